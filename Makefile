# One-command entry points; see README "Quick start".
PYTHON ?= python3
VENV ?= .venv
# torch/torchvision are pinned to the builds this project is tested with; override to use others.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin

.PHONY: install demo test figures gltf-validator toy-gan toy-gan-continue toy-annotations toy-3d toy-3d-template \
	toy-3d-keypoint-names toy-3d-keypoint-loss toy-3d-gan-validation toy-3d-fixed-camera toy-3d-perceptual \
	toy-gan-downstream toy-gan-tables toy-gan-ablations toy-3d-gan-row toy-3d-render toy-3d-gan

$(BIN)/benchmark: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_SPEC)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/benchmark

install: $(BIN)/benchmark

demo: install
	$(BIN)/benchmark run --suite parts

test: install
	$(BIN)/python -m pytest tests

# The Khronos glTF validator, which tests/test_export.py runs on exported cars when node is present.
gltf-validator:
	npm install --silent --prefix build/node gltf-validator

figures: install
	$(BIN)/benchmark toy --split test --n 16 --out build/toy-test-16 --grid docs/toy_grid.png
	$(BIN)/benchmark toy --split test --n 32 --out data/toy-test-32
	$(BIN)/benchmark export-car --image data/toy-test-32/images/000002.png --out build/car.glb --turntable docs/turntable.png \
		--gif docs/drive.gif
	$(BIN)/benchmark export-car --image data/toy-test-32/images/000002.png --out build/car.glb --turntable docs/turntable_parts.png --color-by part

# How the shipped toy GAN was made (toy world v2; resumable: rerun to continue). Mode anchors: 512 training
# images that fixed latents must redraw at 16x16, fitted alone for the first 2,000 iterations; plain StyleGAN2
# (no anchors) lost its colours and layouts on this data (README, "Generators and the shipped toy GAN").
GAN_ITERATIONS ?= 20000
GAN_OPTIONS = --anchors 512 --anchor-weight 50 --anchor-warmup 2000 --threads 2
toy-gan: install
	$(BIN)/benchmark toy --split unlabelled --n 6000 --out data/toy-unlabelled
	$(BIN)/benchmark gan train --data data/toy-unlabelled --run runs/toy-gan --iterations $(GAN_ITERATIONS) $(GAN_OPTIONS)
	cp runs/toy-gan/generator.pt checkpoints/toy-car-gan.pt
	cp runs/toy-gan/training-bf16.pt checkpoints/toy-gan-training-bf16.pt

# Go on training the toy GAN from its committed state (bfloat16; ahead of the shipped generator, see
# docs/experiments.md), on this or another machine, then ship it with its new state and remake what depends on
# it (make -j2 toy-gan-downstream, then make toy-3d-gan-row): make toy-gan-continue GAN_ITERATIONS=80000
toy-gan-continue: install
	$(BIN)/benchmark toy --split unlabelled --n 6000 --out data/toy-unlabelled
	$(BIN)/benchmark gan train --data data/toy-unlabelled --run runs/toy-gan --iterations $(GAN_ITERATIONS) $(GAN_OPTIONS) \
		--resume-from checkpoints/toy-gan-training-bf16.pt
	cp runs/toy-gan/generator.pt checkpoints/toy-car-gan.pt
	cp runs/toy-gan/training-bf16.pt checkpoints/toy-gan-training-bf16.pt

# How the shipped toy annotations and interpreters (parts, keypoints) were made: 16 labelled toy renders, inverted.
toy-annotations: install
	$(BIN)/benchmark toy --split labelled --n 16 --out data/toy-labelled-16
	$(BIN)/benchmark gan project --images data/toy-labelled-16 --out checkpoints/toy-annotations --steps 300
	mkdir -p checkpoints/toy-annotations/labels checkpoints/toy-annotations/keypoints
	cp data/toy-labelled-16/labels/*.png checkpoints/toy-annotations/labels/
	cp data/toy-labelled-16/annotations/*.json checkpoints/toy-annotations/keypoints/
	$(BIN)/benchmark interpreter train
	$(BIN)/benchmark interpreter train --config configs/interpreter/toy-car-keypoints.yaml

# Everything downstream of the toy GAN, remade after a new one is shipped (issue #15): the annotations and both
# interpreters, then two streams that `make -j2 toy-gan-downstream` runs side by side: (1) the GAN's quality record,
# the interpreter's score and limits on the test images, the README's sample grids, the DatasetGAN rows of the
# parts and keypoint tables; (2) those of the ablations (3 seeds; one thread per stream, and for the annotations; the
# other variants do not use the GAN). Then `make toy-3d-gan-row` for the 3D table. Synthetic folders of the old GAN
# are deleted first, as the factory refuses to resume a folder begun by another generator or interpreter.
toy-gan-downstream: toy-gan-tables toy-gan-ablations
toy-gan-tables toy-gan-ablations: export OMP_NUM_THREADS = 1

toy-gan-tables: toy-annotations
	rm -rf build/synthetic-grid
	$(BIN)/benchmark toy --split test --n 32 --out data/toy-test-32
	$(BIN)/benchmark gan quality
	$(BIN)/benchmark gan sample --n 16 --out docs/toy_gan_samples.png --real data/toy-test-32
	$(BIN)/benchmark interpreter eval --toy data/toy-test-32 --n 32
	$(BIN)/python bench/interpreter_limits.py --class-weighting inverse_sqrt_frequency
	$(BIN)/benchmark generate --num 32 --out build/synthetic-grid --grid docs/toy_synthetic_grid.png
	$(BIN)/benchmark run --suite parts --seeds 3 --variants datasetgan
	$(BIN)/benchmark run --suite keypoints --seeds 3 --variants datasetgan

toy-gan-ablations: toy-annotations
	$(BIN)/benchmark run --suite ablations --config configs/overrides/ablations-short.yaml --seeds 3 --variants datasetgan

# How the shipped toy reconstructor and viewpoint regressor were made, and the toy 3D table (results/tables/3d.*):
# the reconstructor trained on toy renders and on GAN samples labelled by both interpreters (parts and keypoints),
# 3 training seeds each (about 15 minutes per training on one core; `make -j2` trains the two sources side by side);
# seed 0 of the render source is shipped. After a new GAN, `make toy-3d-gan-row` remakes the GAN row alone (the
# GAN's runs of before are deleted) and keeps the table's other rows (RENDER_ROWS: the records of the mean car and
# the render source's seeds 0-2).
RECON_OPTIONS = --encoder resnet10 --lr 3e-4 --weight deformation=0.25 --steps 3000 --threads 1
RENDER_ROWS = $(addprefix results/3d/20261206T,234553Z-toy-3d-eval 234642Z-toy-3d-eval 234732Z-toy-3d-eval \
	234820Z-toy-3d-eval)
GAN_CHECKPOINTS = $(foreach s,0 1 2,--checkpoint runs/recon-gan-seed$(s)/reconstructor.pt)
toy-3d: toy-3d-render toy-3d-gan
	$(BIN)/benchmark 3d eval --seeds 0-249 --mean-car \
		$(foreach s,0 1 2,--checkpoint runs/recon-toy-seed$(s)/reconstructor.pt) $(GAN_CHECKPOINTS)

toy-3d-gan-row: toy-3d-gan
	$(BIN)/benchmark 3d eval --seeds 0-249 $(foreach r,$(RENDER_ROWS),--record $(r)) $(GAN_CHECKPOINTS)

toy-3d-render: install data/toy-labelled
	$(BIN)/benchmark 3d viewpoint --toy data/toy-labelled --steps 3000 --threads 1
	for seed in 0 1 2; do \
		$(BIN)/benchmark 3d train --toy data/toy-labelled --run runs/recon-toy-seed$$seed --seed $$seed $(RECON_OPTIONS) \
			|| exit 1; \
	done
	cp runs/recon-toy-seed0/reconstructor.pt checkpoints/toy-car-reconstructor.pt

toy-3d-gan: install data/toy-labelled
	rm -rf data/synthetic-toy-2000 runs/recon-gan-seed0 runs/recon-gan-seed1 runs/recon-gan-seed2
	$(BIN)/benchmark generate --num 2000 --out data/synthetic-toy-2000 \
		--keypoints-config configs/interpreter/toy-car-keypoints.yaml
	for seed in 0 1 2; do \
		$(BIN)/benchmark 3d train --generated data/synthetic-toy-2000 --run runs/recon-gan-seed$$seed --seed $$seed \
			$(RECON_OPTIONS) || exit 1; \
	done

data/toy-labelled: install
	$(BIN)/benchmark toy --split labelled --out data/toy-labelled

# The template experiment (issue #16): the render source trained from the mean-car template, seeds 0 and 1, scored
# beside make toy-3d's ellipsoid seeds (records in results/3d/, table in build/3d-template/).
toy-3d-template: install
	for seed in 0 1; do \
		$(BIN)/benchmark 3d train --toy data/toy-labelled --run runs/recon-toy-meancar-seed$$seed --seed $$seed \
			--template mean-car $(RECON_OPTIONS) || exit 1; \
	done
	$(BIN)/benchmark 3d eval --seeds 0-249 --tables build/3d-template \
		$(foreach s,0 1,--checkpoint runs/recon-toy-seed$(s)/reconstructor.pt) \
		$(foreach s,0 1,--checkpoint runs/recon-toy-meancar-seed$(s)/reconstructor.pt)

# The keypoint-names experiment (issue #16): the GAN source trained on the keypoint interpreter's own names, seeds
# 0-2, scored beside make toy-3d's GAN runs, whose names follow each sample's camera (records in results/3d/, table
# in build/3d-keypoint-names/).
toy-3d-keypoint-names: install
	for seed in 0 1 2; do \
		$(BIN)/benchmark 3d train --generated data/synthetic-toy-2000 --run runs/recon-gan-interpreter-names-seed$$seed \
			--seed $$seed --keypoint-names interpreter $(RECON_OPTIONS) || exit 1; \
	done
	$(BIN)/benchmark 3d eval --seeds 0-249 --tables build/3d-keypoint-names \
		$(foreach s,0 1 2,--checkpoint runs/recon-gan-interpreter-names-seed$(s)/reconstructor.pt) \
		$(foreach s,0 1 2,--checkpoint runs/recon-gan-seed$(s)/reconstructor.pt)

# The keypoint-loss experiment (issue #16): the GAN source trained with the squared keypoint loss and with the mean
# distance (the defaults before the Cauchy loss), the render source with the distance, seeds 0-2, scored beside make
# toy-3d's seeds (table in build/3d-keypoint-loss/).
toy-3d-keypoint-loss: install
	for seed in 0 1 2; do \
		for loss in squared distance; do \
			$(BIN)/benchmark 3d train --generated data/synthetic-toy-2000 --run runs/recon-gan-$$loss-seed$$seed \
				--seed $$seed --keypoint-loss $$loss $(RECON_OPTIONS) || exit 1; \
		done; \
		$(BIN)/benchmark 3d train --toy data/toy-labelled --run runs/recon-toy-distance-seed$$seed --seed $$seed \
			--keypoint-loss distance $(RECON_OPTIONS) || exit 1; \
	done
	$(BIN)/benchmark 3d eval --seeds 0-249 --tables build/3d-keypoint-loss \
		$(foreach r,toy-distance toy gan-squared gan-distance gan,\
			$(foreach s,0 1 2,--checkpoint runs/recon-$(r)-seed$(s)/reconstructor.pt))

# The camera and keypoint-renaming choices (issue #16), made on validation renders no model trains on (the
# unlabelled split's 2,009,000-2,009,099), the GAN source's seed 0: keypoints renamed anywhere with fixed cameras
# (the former defaults), with that the 80% most certain cameras, or refined cameras; renamed within reach with fixed
# cameras (make toy-3d-fixed-camera's seed 0), and the defaults, within reach and refined (make toy-3d-gan's seed 0).
# Table in build/3d-val/.
VAL_RUNS = anywhere:--rename-reach=inf:--fixed-camera keep80:--rename-reach=inf:--fixed-camera:--camera-keep=0.8 \
	refine:--rename-reach=inf
toy-3d-gan-validation: install
	for run in $(VAL_RUNS); do \
		$(BIN)/benchmark 3d train --generated data/synthetic-toy-2000 --run runs/val-recon-gan-$${run%%:*}-seed0 \
			--seed 0 $$(echo $${run#*:} | tr ':' ' ') $(RECON_OPTIONS) || exit 1; \
	done
	$(BIN)/benchmark 3d eval --seeds 2009000-2009099 --out build/3d-val --tables build/3d-val \
		$(foreach r,$(VAL_RUNS),--checkpoint runs/val-recon-gan-$(firstword $(subst :, ,$(r)))-seed0/reconstructor.pt) \
		--checkpoint runs/recon-gan-fixed-camera-seed0/reconstructor.pt --checkpoint runs/recon-gan-seed0/reconstructor.pt

# The camera-refinement experiment (issue #16): the GAN source with the cameras the regressor gives, fixed, seeds
# 0-2, scored beside make toy-3d-gan's refined ones on the test cars (records in results/3d/, table in
# build/3d-fixed-camera/).
toy-3d-fixed-camera: install
	for seed in 0 1 2; do \
		$(BIN)/benchmark 3d train --generated data/synthetic-toy-2000 --run runs/recon-gan-fixed-camera-seed$$seed \
			--seed $$seed --fixed-camera $(RECON_OPTIONS) || exit 1; \
	done
	$(BIN)/benchmark 3d eval --seeds 0-249 --tables build/3d-fixed-camera \
		$(foreach s,0 1 2,--checkpoint runs/recon-gan-fixed-camera-seed$(s)/reconstructor.pt) $(GAN_CHECKPOINTS)

# The perceptual-loss experiment (issue #16): the render source with GANverse3D's perceptual term (weight 0.5, the
# toy feature net in VGG's place), seed 0, scored beside make toy-3d's render seeds (table in build/3d-perceptual/).
toy-3d-perceptual: install
	$(BIN)/benchmark 3d train --toy data/toy-labelled --run runs/recon-toy-perceptual-seed0 --seed 0 \
		--weight perceptual=0.5 $(RECON_OPTIONS)
	$(BIN)/benchmark 3d eval --seeds 0-249 --tables build/3d-perceptual \
		$(foreach s,0 1 2,--checkpoint runs/recon-toy-seed$(s)/reconstructor.pt) \
		--checkpoint runs/recon-toy-perceptual-seed0/reconstructor.pt
