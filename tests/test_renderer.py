"""Tests of the cameras and the sparse rasterizer against brute force, analytic areas and gradcheck."""

import math

import pytest
import torch
import trimesh
from scipy.spatial import ConvexHull

from inverse_graphics import (
    RasterSettings,
    assert_shape,
    interpolate,
    interpolate_face,
    look_at,
    project,
    rasterize,
    rasterize_dense,
    soft_silhouette,
    soft_silhouette_dense,
)

FOV = 40.0


def mesh_tensors(
    mesh: trimesh.Trimesh, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Vertices float (V, 3) and faces int64 (F, 3) of a trimesh mesh."""
    return torch.tensor(mesh.vertices, dtype=dtype), torch.tensor(mesh.faces, dtype=torch.int64)


def random_soup(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """30 random, overlapping, randomly wound triangles around the origin."""
    generator = torch.Generator().manual_seed(seed)
    verts = torch.rand(90, 3, generator=generator, dtype=torch.float64) * 2 - 1
    return verts, torch.arange(90).view(30, 3)


def screen(verts: torch.Tensor, azimuth, elevation, distance=3.0, size=32):
    """Project float (V, 3) world vertices for a batch of look_at cameras: float (B, V, 3)."""
    cameras = look_at(torch.as_tensor(azimuth, dtype=verts.dtype), elevation, distance, FOV, size)
    return project(verts.expand(len(cameras), -1, -1), cameras)


MESHES = {
    "icosphere": lambda: mesh_tensors(trimesh.creation.icosphere(subdivisions=1)),
    "box": lambda: mesh_tensors(trimesh.creation.box()),
    "big_box": lambda: mesh_tensors(
        trimesh.creation.box(extents=(2.0, 2.0, 2.0)).apply_translation((1.2, 0.3, 0.0))
    ),
    "soup": lambda: random_soup(0),
}


@pytest.mark.parametrize("cull", [True, False])
@pytest.mark.parametrize("name", sorted(MESHES))
def test_fast_matches_dense(name, cull):
    verts, faces = MESHES[name]()
    settings = RasterSettings(image_size=32, cull_backfaces=cull)
    screen_verts = screen(verts, [0.0, 37.0, 90.0, 215.0], [0.0, 20.0, 0.0, -35.0], size=32)
    fast = rasterize(screen_verts, faces, settings)
    dense = rasterize_dense(screen_verts, faces, settings)
    assert torch.equal(fast.face_idx, dense.face_idx)
    assert (fast.face_idx >= 0).sum() > 100
    torch.testing.assert_close(fast.bary, dense.bary)
    torch.testing.assert_close(fast.depth, dense.depth)
    soft = soft_silhouette(screen_verts, faces, fast, settings)
    torch.testing.assert_close(soft, soft_silhouette_dense(screen_verts, faces, dense, settings))
    assert ((soft > 0.01) & (soft < 0.99)).any()


def test_shared_edges_and_vertices_cover_each_pixel_centre_once():
    # A fan of 8 triangles whose spokes and rim run through pixel centres of an 8x8 square.
    ring = [(0, 0), (4, 0), (8, 0), (8, 4), (8, 8), (4, 8), (0, 8), (0, 4)]
    uv = torch.tensor([(4.0, 4.0)] + ring, dtype=torch.float64) + 0.5
    screen_verts = torch.cat([uv, torch.full((9, 1), 2.0, dtype=torch.float64)], 1)[None]
    faces = torch.tensor([[0, 1 + i, 1 + (i + 1) % 8] for i in range(8)])
    settings = RasterSettings(image_size=10, cull_backfaces=False)
    alone = [rasterize(screen_verts, faces[i : i + 1], settings).face_idx[0] >= 0 for i in range(8)]
    alone = torch.stack(alone)
    assert alone.sum(0).max() == 1  # no pixel centre claimed twice
    together = rasterize(screen_verts, faces, settings).face_idx[0] >= 0
    assert torch.equal(alone.any(0), together)
    assert together.sum() == 64  # top and left rim included, bottom and right excluded: the exact area


def test_near_plane_and_depth_order():
    near_uv = [(2.0, 2.0), (14.0, 3.0), (6.0, 14.0)]
    far_uv = [(3.0, 4.0), (15.0, 6.0), (9.0, 15.0)]
    verts = torch.tensor([(u, v, 2.0) for u, v in near_uv] + [(u, v, 5.0) for u, v in far_uv])
    settings = RasterSettings(image_size=16, cull_backfaces=False)
    near_first = rasterize(verts[None], torch.tensor([[0, 1, 2], [3, 4, 5]]), settings)
    far_first = rasterize(verts[None], torch.tensor([[3, 4, 5], [0, 1, 2]]), settings)
    swapped_back = torch.where(far_first.face_idx >= 0, 1 - far_first.face_idx, -1)
    assert torch.equal(near_first.face_idx, swapped_back)
    both = (near_first.face_idx == 0) & (far_first.face_idx == 1)
    assert both.sum() > 20  # the overlap is large, and the near triangle wins it in both orders
    torch.testing.assert_close(near_first.depth[both], torch.full_like(near_first.depth[both], 2.0))
    behind = verts.clone()
    behind[0, 2] = -1.0  # one corner behind the camera: the whole face is dropped
    assert torch.all(rasterize(behind[None], torch.tensor([[0, 1, 2]]), settings).face_idx == -1)


def test_cameras_follow_the_conventions():
    cameras = look_at(torch.tensor([0.0, 90.0, 30.0]), torch.tensor([0.0, 0.0, 25.0]), 3.0, 60.0, 64)
    rotation_check = cameras.R @ cameras.R.transpose(1, 2)
    torch.testing.assert_close(rotation_check, torch.eye(3).expand(3, 3, 3))
    torch.testing.assert_close(torch.linalg.det(cameras.R), torch.ones(3))
    position = -(cameras.R.transpose(1, 2) @ cameras.T[..., None])[..., 0]
    az = torch.deg2rad(torch.tensor([0.0, 90.0, 30.0]))
    el = torch.deg2rad(torch.tensor([0.0, 0.0, 25.0]))
    expected = 3 * torch.stack([el.cos() * az.sin(), el.sin(), el.cos() * az.cos()], 1)
    torch.testing.assert_close(position, expected)
    torch.testing.assert_close(cameras.focal, torch.full((3,), 32 / math.tan(math.radians(30))))
    points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]).expand(3, 4, 3)
    uvz = project(points, cameras)
    torch.testing.assert_close(uvz[:, 0], torch.tensor([32.0, 32.0, 3.0]).expand(3, 3))
    assert uvz[0, 1, 0] > 32  # azimuth 0, side view: the car front (+x) is on the right
    assert torch.all(uvz[:, 2, 1] < 32)  # world up is image up
    assert uvz[1, 3, 0] < 32 and uvz[1, 1, 2] < 3  # azimuth 90 looks from +x: +z is on the left
    assert position[2, 1] > 0 and uvz[2, 1, 1] > 32  # from above: +x, on the camera side, sits low


def test_assert_shape_rejects_wrong_shapes():
    assert_shape(torch.zeros(2, 5, 3), (2, None, 3), "points")
    with pytest.raises(ValueError, match="points"):
        assert_shape(torch.zeros(2, 5, 2), (2, None, 3), "points")
    with pytest.raises(ValueError, match="screen_verts"):
        rasterize(torch.zeros(5, 3), torch.zeros(1, 3, dtype=torch.int64))


def cube_pixel_count(
    azimuth: float, elevation: float, distance: float, size: int
) -> tuple[int, torch.Tensor]:
    """Covered pixel count of a unit cube, and its projected corners float (8, 2)."""
    verts, faces = mesh_tensors(trimesh.creation.box(), torch.float32)
    screen_verts = screen(verts, [azimuth], [elevation], distance, size)
    count = (rasterize(screen_verts, faces, RasterSettings(image_size=size)).face_idx >= 0).sum().item()
    return count, screen_verts[0, :, :2]


def test_cube_face_on_area():
    distance, size = 3.0, 96
    count, _ = cube_pixel_count(0.0, 0.0, distance, size)
    focal = (size / 2) / math.tan(math.radians(FOV / 2))
    side = focal / (distance - 0.5)
    assert abs(count - side**2) <= 4 * side  # error within the perimeter in pixels


@pytest.mark.parametrize("azimuth, elevation", [(45.0, 0.0), (30.0, 25.0), (160.0, -40.0)])
def test_cube_rotated_area(azimuth, elevation):
    count, corners = cube_pixel_count(azimuth, elevation, 3.0, 96)
    hull = ConvexHull(corners.double().numpy())  # in 2D, volume is the area and area the perimeter
    assert abs(count - hull.volume) <= hull.area


def test_backface_culling():
    verts, faces = mesh_tensors(trimesh.creation.box())
    screen_verts = screen(verts, [20.0, 135.0], [30.0, -10.0])
    culled, unculled = RasterSettings(image_size=32), RasterSettings(image_size=32, cull_backfaces=False)
    normal = rasterize(screen_verts, faces, culled).face_idx
    covered = normal >= 0
    assert covered.sum() > 200
    flipped = rasterize(screen_verts, faces.flip(1), culled).face_idx
    assert torch.equal(flipped >= 0, covered)  # a flipped closed box shows its inner far walls
    assert torch.equal(rasterize(screen_verts, faces.flip(1), unculled).face_idx, normal)
    for view in range(2):
        front = normal[view][covered[view]].unique()  # the faces turned to this camera
        assert not torch.isin(flipped[view][covered[view]], front).any()
        front_flipped = faces[front].flip(1)
        one_view = screen_verts[view : view + 1]
        assert torch.all(rasterize(one_view, front_flipped, culled).face_idx == -1)
        assert torch.equal(rasterize(one_view, front_flipped, unculled).face_idx[0] >= 0, covered[view])

    verts, faces = mesh_tensors(trimesh.creation.icosphere(subdivisions=2))
    screen_verts = screen(verts, [10.0, 250.0], [5.0, 60.0])
    sphere = rasterize(screen_verts, faces, culled).face_idx
    assert (sphere >= 0).sum() > 500
    assert torch.equal(sphere, rasterize(screen_verts, faces, unculled).face_idx)  # closed and convex


def test_perspective_correct_interpolation():
    verts, faces = mesh_tensors(trimesh.creation.icosphere(subdivisions=1), torch.float32)
    cameras = look_at(torch.tensor([20.0, 200.0]), torch.tensor([30.0, -20.0]), 2.2, 70.0, 48)
    world = verts.expand(2, -1, -1)
    fragments = rasterize(project(world, cameras), faces, RasterSettings(image_size=48))
    covered = fragments.face_idx >= 0
    surface = interpolate(fragments, faces, world)  # (B, H, W, 3) world points seen by each pixel
    uvz = project(surface.flatten(1, 2), cameras).view(2, 48, 48, 3)
    v, u = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    assert covered.sum() > 1000
    assert (uvz[..., 0] - u)[covered].abs().max() < 1e-4
    assert (uvz[..., 1] - v)[covered].abs().max() < 1e-4
    torch.testing.assert_close(uvz[..., 2][covered], fragments.depth[covered])
    assert torch.all(surface[~covered] == 0)


def test_interpolate_face_gives_the_visible_face_labels():
    verts, faces = mesh_tensors(trimesh.creation.box())
    fragments = rasterize(screen(verts, [30.0], [20.0]), faces, RasterSettings(image_size=32))
    labels = torch.arange(12, dtype=torch.float64).view(1, 12, 1) * torch.tensor([1.0, -2.0])
    image = interpolate_face(fragments, labels)
    covered = fragments.face_idx >= 0
    torch.testing.assert_close(image[covered], labels[0, fragments.face_idx[covered]])
    assert torch.all(image[~covered] == 0)
    assert len(fragments.face_idx[covered].unique()) == 6  # 3 visible sides of 2 triangles each


def test_soft_silhouette_of_one_triangle_is_the_gaussian_of_the_distance():
    # Right edge at u = 10 from v = 0 to v = 16: pixel centres right of it are 0.5, 1.5, ... away.
    screen_verts = torch.tensor(
        [[[10.0, 0.0, 1.0], [10.0, 16.0, 1.0], [0.0, 16.0, 1.0]]], dtype=torch.float64
    )
    faces = torch.tensor([[0, 1, 2]])
    settings = RasterSettings(image_size=16, cull_backfaces=False, sigma=2.0)
    soft = soft_silhouette(screen_verts, faces, rasterize(screen_verts, faces, settings), settings)
    distance = torch.arange(6, dtype=torch.float64) + 0.5
    gaussian = torch.exp(-(distance**2) / settings.sigma)
    expected = torch.where(distance < settings.soft_radius, gaussian, 0.0)
    torch.testing.assert_close(soft[0, 12, 10:], expected)  # row v = 12.5
    assert torch.all(soft[0, 12, 3:10] == 1)  # covered: the hypotenuse crosses this row at u = 2.2


TINY_VERTS = torch.tensor(
    [[-0.8, -0.6, 0.0], [0.7, -0.7, 0.1], [0.6, 0.65, 0.0], [-0.7, 0.5, -0.1]], dtype=torch.float64
)
TINY_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])
TINY = RasterSettings(image_size=8)


def tiny_camera_inputs():
    """Azimuth, elevation, distance float64 (1,) for the tiny gradcheck scene."""
    return tuple(torch.tensor([value], dtype=torch.float64) for value in (20.0, 15.0, 2.6))


def edge_distances(screen_verts: torch.Tensor, faces: torch.Tensor, size: int) -> torch.Tensor:
    """float (F, S*S) distance from each pixel centre to each face's nearest edge (brute force)."""
    centres = torch.arange(size, dtype=screen_verts.dtype) + 0.5
    points = torch.stack(torch.meshgrid(centres, centres, indexing="xy"), -1).reshape(-1, 1, 1, 2)
    start = screen_verts[0, faces, :2]
    edge = screen_verts[0, faces.roll(-1, 1), :2] - start
    t = (((points - start) * edge).sum(-1) / (edge * edge).sum(-1)).clamp(0, 1)
    return (points - start - t[..., None] * edge).norm(dim=-1).amin(-1).T


def test_tiny_scene_is_safe_for_finite_differences():
    cameras = look_at(*tiny_camera_inputs(), FOV, TINY.image_size)
    distances = edge_distances(project(TINY_VERTS[None], cameras), TINY_FACES, TINY.image_size)
    covered = rasterize(project(TINY_VERTS[None], cameras), TINY_FACES, TINY).face_idx >= 0
    assert covered.sum() >= 10
    assert (distances.min() > 1e-3) and ((distances - TINY.soft_radius).abs().min() > 1e-3)


def test_gradcheck_interpolate_through_cameras():
    faces = TINY_FACES

    def render(verts, attrs, azimuth, elevation, distance):
        cameras = look_at(azimuth, elevation, distance, FOV, TINY.image_size)
        fragments = rasterize(project(verts, cameras), faces, TINY)
        depth = torch.where(fragments.face_idx >= 0, fragments.depth, 0.0)
        return interpolate(fragments, faces, attrs), depth

    verts = TINY_VERTS[None].clone().requires_grad_()
    generator = torch.Generator().manual_seed(1)
    attrs = torch.rand(1, 4, 2, dtype=torch.float64, generator=generator).requires_grad_()
    cams = [value.requires_grad_() for value in tiny_camera_inputs()]
    assert torch.autograd.gradcheck(render, (verts, attrs, *cams))


def test_gradcheck_soft_silhouette():
    cameras = look_at(*tiny_camera_inputs(), FOV, TINY.image_size)

    def silhouette(verts):
        screen_verts = project(verts, cameras)
        return soft_silhouette(screen_verts, TINY_FACES, rasterize(screen_verts, TINY_FACES, TINY), TINY)

    assert torch.autograd.gradcheck(silhouette, (TINY_VERTS[None].clone().requires_grad_(),))


def test_fast_and_dense_gradients_agree():
    verts, faces = mesh_tensors(trimesh.creation.icosphere(subdivisions=1))
    settings = RasterSettings(image_size=16)
    generator = torch.Generator().manual_seed(2)
    colours = torch.rand(2, len(verts), 3, dtype=torch.float64, generator=generator)
    weights = torch.rand(2, 16, 16, 4, dtype=torch.float64, generator=generator)

    def gradients(rasterizer, silhouette):
        world = verts.expand(2, -1, -1).clone().requires_grad_()
        attrs = colours.clone().requires_grad_()
        cameras = look_at(torch.tensor([30.0, 250.0], dtype=torch.float64), 10.0, 3.0, FOV, 16)
        screen_verts = project(world, cameras)
        fragments = rasterizer(screen_verts, faces, settings)
        soft = silhouette(screen_verts, faces, fragments, settings)
        image = torch.cat([interpolate(fragments, faces, attrs), soft[..., None]], -1)
        (image * weights).sum().backward()
        return world.grad, attrs.grad

    fast = gradients(rasterize, soft_silhouette)
    dense = gradients(rasterize_dense, soft_silhouette_dense)
    assert fast[0].abs().sum() > 0
    torch.testing.assert_close(fast, dense)


def sphere_on(device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 162-vertex sphere's faces int64 (F, 3), seen by 3 cameras: float32 (3, V, 3) world
    vertices and their projection, both on device."""
    verts, faces = mesh_tensors(trimesh.creation.icosphere(subdivisions=2), torch.float32)
    world = verts.to(device).expand(3, -1, -1)
    cameras = look_at(torch.tensor([0.0, 100.0, 230.0], device=device), 15.0, 3.0, FOV, 64)
    return faces.to(device), world, project(world, cameras)


def render_on(device: str, screen_verts: torch.Tensor) -> list[torch.Tensor]:
    """face_idx, bary, soft silhouette, interpolated screen positions and the gradient w.r.t.
    screen_verts float (3, V, 3) of the sphere, computed on device and returned on the CPU."""
    settings = RasterSettings(image_size=64)
    faces = sphere_on(device)[0]
    screen_verts = screen_verts.detach().to(device).requires_grad_()  # the same leaf input on every device
    fragments = rasterize(screen_verts, faces, settings)
    soft = soft_silhouette(screen_verts, faces, fragments, settings)
    image = interpolate(fragments, faces, screen_verts)
    (image.sum() + soft.sum()).backward()
    outputs = (fragments.face_idx, fragments.bary, soft, image, screen_verts.grad)
    return [output.detach().cpu() for output in outputs]


def test_render_on_cpu_is_reproducible():
    screen_verts = sphere_on("cpu")[2]
    first, second = render_on("cpu", screen_verts), render_on("cpu", screen_verts)
    assert (first[0] >= 0).sum() > 3000
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    _, _, screen_cpu = sphere_on("cpu")
    torch.testing.assert_close(sphere_on("cuda")[2].cpu(), screen_cpu)
    cpu, cuda = render_on("cpu", screen_cpu), render_on("cuda", screen_cpu)
    assert torch.equal(cpu[0], cuda[0])
    for a, b in zip(cpu[1:], cuda[1:]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
