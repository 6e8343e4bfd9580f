"""Class sets (names and palettes) and the merges between them, declared once as data; class weights for
cross-entropy on their label maps."""
import torch
from torch import Tensor

from datasources.base import IGNORE, ClassSet, LabelMerge

CLASS_WEIGHTINGS = ("none", "inverse_sqrt_frequency", "inverse_frequency")   # class_weights' rules

# ADE-Car-12, in the name order of the official code's class list (utils/data_util.py).
CAR_12 = ClassSet(
    "car-12",
    ("background", "car_body", "head light", "tail light", "licence plate", "wind shield",
     "wheel", "door", "handle", "wheelhub", "window", "mirror"),
    ((0, 0, 0), (128, 128, 128), (255, 255, 0), (255, 0, 0), (255, 255, 255), (0, 128, 255),
     (0, 0, 160), (0, 160, 0), (255, 128, 0), (192, 0, 192), (0, 255, 255), (128, 64, 0)),
)

# The 5-part PASCAL-style car set (plus background) used by ADE-Car-5 and PASCAL-Car-5.
CAR_5 = ClassSet(
    "car-5",
    ("background", "body", "light", "plate", "wheel", "window"),
    ((0, 0, 0), (128, 128, 128), (255, 255, 0), (255, 255, 255), (40, 40, 40), (0, 255, 255)),
)

CAR_12_TO_5 = LabelMerge(CAR_12, CAR_5, {
    "background": "background", "car_body": "body", "door": "body", "handle": "body",
    "mirror": "body", "head light": "light", "tail light": "light", "licence plate": "plate",
    "wheel": "wheel", "wheelhub": "wheel", "wind shield": "window", "window": "window",
})


def _merge(source: ClassSet, target: ClassSet, groups: dict[str, tuple[str, ...]]) -> LabelMerge:
    """A LabelMerge written as target name -> the source names that map onto it (each source once)."""
    mapping = {src: dst for dst, srcs in groups.items() for src in srcs}
    if len(mapping) != sum(len(srcs) for srcs in groups.values()):
        raise ValueError(f"{source.name} -> {target.name}: a source class is listed under two targets")
    return LabelMerge(source, target, mapping)


# Car-20: the official DatasetGAN class list and palette (nv-tlabs/datasetGAN_release utils/data_util.py).
CAR_20 = ClassSet(
    "car-20",
    ("background", "back_bumper", "bumper", "car_body", "car_lights", "door", "fender", "grilles", "handles",
     "hoods", "licensePlate", "mirror", "roof", "running_boards", "tailLight", "tire", "trunk_lids", "wheelhub",
     "window", "windshield"),
    ((255, 255, 255), (238, 229, 102), (0, 0, 0), (124, 99, 34), (193, 127, 15), (248, 213, 42), (220, 147, 77),
     (99, 83, 3), (116, 116, 138), (200, 226, 37), (225, 184, 161), (142, 172, 248), (153, 112, 146),
     (38, 112, 254), (229, 30, 141), (52, 83, 84), (194, 87, 125), (225, 96, 18), (31, 102, 211), (104, 131, 101)),
)

# The official 20 -> 12 reduction (utils/data_util.py), by name: its own index order differs from
# CAR_12's name order, so the merge is declared on names and lands in CAR_12's order.
CAR_20_TO_12 = _merge(CAR_20, CAR_12, {
    "background": ("background",),
    "car_body": ("back_bumper", "bumper", "car_body", "fender", "grilles", "hoods", "roof", "running_boards",
                 "trunk_lids"),
    "head light": ("car_lights",), "tail light": ("tailLight",), "licence plate": ("licensePlate",),
    "wind shield": ("windshield",), "wheel": ("tire",), "door": ("door",), "handle": ("handles",),
    "wheelhub": ("wheelhub",), "window": ("window",), "mirror": ("mirror",),
})

# Face-34: the official class list (spelling included) and palette (utils/data_util.py, floats * 255).
FACE_34 = ClassSet(
    "face-34",
    ("background", "head", "head***cheek", "head***chin", "head***ear", "head***ear***helix",
     "head***ear***lobule", "head***eye***botton lid", "head***eye***eyelashes", "head***eye***iris",
     "head***eye***pupil", "head***eye***sclera", "head***eye***tear duct", "head***eye***top lid",
     "head***eyebrow", "head***forehead", "head***frown", "head***hair", "head***hair***sideburns",
     "head***jaw", "head***moustache", "head***mouth***inferior lip", "head***mouth***oral comisure",
     "head***mouth***superior lip", "head***mouth***teeth", "head***neck", "head***nose",
     "head***nose***ala of nose", "head***nose***bridge", "head***nose***nose tip", "head***nose***nostril",
     "head***philtrum", "head***temple", "head***wrinkles"),
    ((255, 255, 255), (112, 130, 107), (218, 243, 81), (61, 119, 252), (215, 237, 192), (95, 201, 83),
     (4, 126, 96), (190, 3, 144), (41, 61, 186), (5, 111, 104), (149, 226, 156), (203, 232, 247),
     (173, 159, 218), (254, 119, 98), (136, 210, 69), (44, 92, 212), (135, 170, 125), (54, 88, 120),
     (174, 31, 37), (98, 118, 25), (58, 10, 77), (146, 139, 250), (33, 245, 19), (72, 47, 66),
     (248, 240, 169), (99, 113, 164), (221, 100, 24), (155, 247, 6), (93, 170, 79), (164, 186, 243),
     (157, 27, 230), (86, 126, 185), (42, 235, 167), (240, 171, 157)),
)

# CelebAMask-HQ's 18 part files in the official paint order (later wins), label = position + 1.
# Colours per name follow yandex-research/ddpm-segmentation's celeba palette.
CELEBA_19 = ClassSet(
    "celeba-19",
    ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth",
     "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
    ((255, 255, 255), (248, 213, 42), (38, 112, 254), (124, 99, 34), (116, 116, 138), (194, 87, 125),
     (220, 147, 77), (229, 30, 141), (99, 83, 3), (52, 83, 84), (225, 184, 161), (31, 102, 211),
     (200, 226, 37), (193, 127, 15), (225, 96, 18), (250, 150, 50), (153, 112, 146), (142, 172, 248),
     (238, 229, 102)),
)

# CelebA-Mask-8 as the paper names it; colours reuse CELEBA_19's for the matching parts.
CELEBA_MASK_8 = ClassSet(
    "celeba-mask-8",
    ("background", "ear", "eye", "eyebrow", "skin", "hair", "mouth", "nose"),
    ((255, 255, 255), (99, 83, 3), (116, 116, 138), (220, 147, 77), (248, 213, 42), (193, 127, 15),
     (225, 184, 161), (38, 112, 254)),
)

CELEBA_19_TO_8 = _merge(CELEBA_19, CELEBA_MASK_8, {
    "background": ("background", "hat", "ear_r", "neck_l", "neck", "cloth"),
    "skin": ("skin", "eye_g"), "eye": ("l_eye", "r_eye"), "eyebrow": ("l_brow", "r_brow"),
    "ear": ("l_ear", "r_ear"), "mouth": ("mouth", "u_lip", "l_lip"), "hair": ("hair",), "nose": ("nose",),
})

# Face-34 onto CelebA-Mask-8 (inferred: neck is background as in CELEBA_19_TO_8; eyelids and lashes
# are eye; moustache, like every other unlisted face region, is skin).
FACE_34_TO_8 = _merge(FACE_34, CELEBA_MASK_8, {
    "background": ("background", "head***neck"),
    "skin": ("head", "head***cheek", "head***chin", "head***forehead", "head***frown", "head***jaw",
             "head***moustache", "head***philtrum", "head***temple", "head***wrinkles"),
    "ear": ("head***ear", "head***ear***helix", "head***ear***lobule"),
    "eye": ("head***eye***botton lid", "head***eye***eyelashes", "head***eye***iris", "head***eye***pupil",
            "head***eye***sclera", "head***eye***tear duct", "head***eye***top lid"),
    "eyebrow": ("head***eyebrow",), "hair": ("head***hair", "head***hair***sideburns"),
    "mouth": ("head***mouth***inferior lip", "head***mouth***oral comisure", "head***mouth***superior lip",
              "head***mouth***teeth"),
    "nose": ("head***nose", "head***nose***ala of nose", "head***nose***bridge", "head***nose***nose tip",
             "head***nose***nostril"),
})

# Cat-16: names from donydchen/sem2nerf data/CatMask/README.md, which lists DatasetGAN's cat labels
# (third-party; the official code has no cat name list); palette is the official cat_palette, whose
# entries 1 and 4 share a colour.
CAT_16 = ClassSet(
    "cat-16",
    ("background", "limbus", "back", "belly", "chest", "leg", "paw", "head", "ear", "eye", "mouth", "tongue",
     "nose", "tail", "whiskers", "neck"),
    ((255, 255, 255), (220, 220, 0), (190, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35),
     (102, 102, 156), (152, 251, 152), (119, 11, 32), (244, 35, 232), (220, 20, 60), (52, 83, 84),
     (194, 87, 125), (225, 96, 18), (31, 102, 211), (104, 131, 101)),
)

# Bedroom-19 and Bird-11: no published name list was found (bedroom and bird code were never
# released). PLACEHOLDER names "class_NN" keep the sizes; index 0 is background as in every released
# list. Bedroom colours are the first 19 of the official bedroom_palette; bird reuses its first 11.
_BEDROOM_PALETTE = (
    (255, 255, 255), (238, 229, 102), (255, 72, 69), (124, 99, 34), (193, 127, 15), (106, 177, 21),
    (248, 213, 42), (252, 155, 83), (220, 147, 77), (99, 83, 3), (116, 116, 138), (63, 182, 24),
    (200, 226, 37), (225, 184, 161), (233, 5, 219), (142, 172, 248), (153, 112, 146), (38, 112, 254),
    (229, 30, 141),
)
BEDROOM_19 = ClassSet("bedroom-19", ("background",) + tuple(f"class_{i:02d}" for i in range(1, 19)), _BEDROOM_PALETTE)
BIRD_11 = ClassSet("bird-11", ("background",) + tuple(f"class_{i:02d}" for i in range(1, 11)), _BEDROOM_PALETTE[:11])

# PASCAL-Part car parts by kind (numbered parts such as door_2 share their kind); "car" is car pixels
# outside every part.
PASCAL_CAR_PARTS = ClassSet(
    "pascal-car-parts",
    ("background", "car", "frontside", "leftside", "rightside", "backside", "roofside", "leftmirror",
     "rightmirror", "door", "wheel", "headlight", "fliplate", "bliplate", "window"),
    ((0, 0, 0), (128, 128, 128), (160, 120, 120), (120, 160, 120), (120, 120, 160), (160, 160, 120),
     (160, 120, 160), (128, 64, 0), (64, 128, 0), (0, 160, 0), (40, 40, 40), (255, 255, 0), (255, 255, 255),
     (224, 224, 224), (0, 255, 255)),
)

# Third-party Car-5 grouping of PASCAL-Part (inferred for the paper).
PASCAL_CAR_TO_5 = _merge(PASCAL_CAR_PARTS, CAR_5, {
    "background": ("background",),
    "body": ("car", "frontside", "leftside", "rightside", "backside", "roofside", "leftmirror", "rightmirror",
             "door"),
    "light": ("headlight",), "plate": ("fliplate", "bliplate"), "wheel": ("wheel",), "window": ("window",),
})

# CUB-200-2011 foreground masks and its 15 keypoints (parts/parts.txt order).
CUB_MASK = ClassSet("cub-mask", ("background", "bird"), ((0, 0, 0), (255, 255, 255)))
CUB_KEYPOINTS = ("back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg", "left wing",
                 "nape", "right eye", "right leg", "right wing", "tail", "throat")

# Image and keypoint sources without part labels: the class set only names what the images show.
CAR_OBJECT = ClassSet("car-object", ("background", "car"), ((0, 0, 0), (255, 255, 255)))
CAT_OBJECT = ClassSet("cat-object", ("background", "cat"), ((0, 0, 0), (255, 255, 255)))
# Kaggle CAT's 9 head points, in .cat file order.
CAT_KEYPOINTS = ("left eye", "right eye", "mouth", "left ear 1", "left ear 2", "left ear 3", "right ear 1",
                 "right ear 2", "right ear 3")

# Every class set above by its name, for configs.
CLASS_SETS = {value.name: value for value in list(globals().values()) if isinstance(value, ClassSet)}


def class_weights(labels: Tensor, num_classes: int, rule: str = "none") -> Tensor | None:
    """labels: int64 (N, H, W) training label maps (IGNORE left out) -> float (K,) cross-entropy class weights, or
    None for rule "none". "inverse_sqrt_frequency": f^-1/2 for each class's pixel frequency f, "inverse_frequency":
    f^-1 (every class present weighs as much in all), scaled so that the average training pixel weighs 1 (classes
    absent from the labels weigh 0: they are never a target). On 64 px toy cars a handle covers 3 pixels:
    unweighted, no network predicts it (docs/segmentation-setup.md)."""
    if rule == "none":
        return None
    if rule not in CLASS_WEIGHTINGS:
        raise ValueError(f"unknown class weighting {rule!r}; valid: {', '.join(CLASS_WEIGHTINGS)}")
    counts = torch.bincount(labels[labels != IGNORE], minlength=num_classes).double()
    freq = counts / counts.sum().clamp_min(1)
    power = 0.5 if rule == "inverse_sqrt_frequency" else 1.0
    weight = torch.where(counts > 0, freq.clamp_min(1e-12) ** -power, torch.zeros_like(freq))
    return (weight / (freq * weight).sum()).float()
