//! Draws one pedestrian crop: camera background, the person in a view and pose, an optional
//! occluder, then the camera's lighting, blur and noise.

use rand::Rng;
use rand::rngs::StdRng;

use super::camera::{Camera, View};
use super::canvas::{Canvas, Color, Paint};
use super::identity::{Appearance, Bag, Lower};

/// Rendering canvas (twice the output size, for smooth edges after downscaling).
pub const CANVAS_W: usize = 128;
/// Canvas height.
pub const CANVAS_H: usize = 256;

/// Where and how the person stands in the crop.
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    /// Facing.
    pub view: View,
    /// Horizontal centre (pixels).
    pub cx: f32,
    /// Top of the head (pixels).
    pub top: f32,
    /// Body height (pixels).
    pub height: f32,
    /// Stride phase in −1..1 (leg and arm swing).
    pub stride: f32,
}

impl Pose {
    /// A random pose for `appearance` seen by `camera`.
    pub fn random(rng: &mut StdRng, camera: &Camera, appearance: &Appearance) -> Self {
        let j = camera.jitter;
        let height =
            CANVAS_H as f32 * appearance.height * rng.random_range(1.0 - j..1.0 + j).min(1.04);
        Pose {
            view: camera.view(rng),
            cx: CANVAS_W as f32 * (0.5 + rng.random_range(-j..j)),
            top: (CANVAS_H as f32 - height) * rng.random_range(0.2..0.8),
            height,
            stride: rng.random_range(-1.0..1.0),
        }
    }
}

/// Draws `appearance` in `pose` onto `canvas`.
pub fn draw_person(canvas: &mut Canvas, appearance: &Appearance, pose: Pose) {
    let h = pose.height;
    let y = |f: f32| pose.top + f * h;
    let side = pose.view == View::Side;
    let ws = 1.3 * appearance.width * if side { 0.6 } else { 1.0 };
    let x = |f: f32| pose.cx + f * h * ws;
    let skin = Paint::Solid(appearance.skin);
    let swing = pose.stride * 0.05;

    // Backpack seen from the side sticks out behind the torso; drawn first.
    if let (Bag::Backpack(c), true) = (appearance.bag, side) {
        canvas.fill_rect(x(-0.2), y(0.16), x(-0.08), y(0.42), Paint::Solid(c));
    }
    // Long hair behind the shoulders (front view: at the sides of the head).
    if appearance.long_hair && pose.view != View::Back {
        canvas.fill_rect(
            x(-0.06),
            y(0.06),
            x(0.06),
            y(0.22),
            Paint::Solid(appearance.hair),
        );
    }
    // Legs (and skirt), then shoes.
    let (hip, ankle) = (0.50, 0.93);
    let leg_paint = appearance.lower_paint;
    for (offset, sign) in [(-0.045, -1.0), (0.045, 1.0)] {
        let foot = offset + sign * swing * if side { 2.0 } else { 0.6 };
        let leg = |from: f32, to: f32, paint: Paint, canvas: &mut Canvas| {
            let t0 = (from - hip) / (ankle - hip);
            let t1 = (to - hip) / (ankle - hip);
            let at = |t: f32| offset + (foot - offset) * t;
            canvas.fill_trapezoid(
                y(from),
                y(to),
                (x(at(t0) - 0.042), x(at(t0) + 0.042)),
                (x(at(t1) - 0.036), x(at(t1) + 0.036)),
                paint,
            );
        };
        match appearance.lower {
            Lower::Trousers => leg(hip, ankle, leg_paint, canvas),
            Lower::Shorts => {
                leg(hip, 0.64, leg_paint, canvas);
                leg(0.64, ankle, skin, canvas);
            }
            Lower::Skirt => leg(0.66, ankle, skin, canvas),
        }
        let fx = foot;
        canvas.fill_ellipse(
            x(fx),
            y(0.955),
            0.05 * h * ws.max(0.8),
            0.025 * h,
            Paint::Solid(appearance.shoes),
        );
    }
    if appearance.lower == Lower::Skirt {
        canvas.fill_trapezoid(
            y(0.47),
            y(0.68),
            (x(-0.1), x(0.1)),
            (x(-0.15), x(0.15)),
            leg_paint,
        );
    }
    // Arms behind the torso edge, swinging against the legs.
    let sleeve = if appearance.short_sleeves { 0.27 } else { 0.45 };
    for (shoulder, sign) in [(-0.12, -1.0), (0.12, 1.0)] {
        if side && sign > 0.0 {
            continue;
        }
        let hand = shoulder - sign * swing * if side { 3.0 } else { 0.5 } + sign * 0.01;
        let shoulder = if side { 0.0 } else { shoulder };
        let hand = if side { -swing * 3.0 } else { hand };
        let at = |t: f32| shoulder + (hand - shoulder) * t;
        let s = (sleeve - 0.15) / 0.33;
        canvas.fill_trapezoid(
            y(0.15),
            y(sleeve),
            (x(at(0.0) - 0.035), x(at(0.0) + 0.035)),
            (x(at(s) - 0.03), x(at(s) + 0.03)),
            appearance.upper,
        );
        canvas.fill_trapezoid(
            y(sleeve),
            y(0.48),
            (x(at(s) - 0.03), x(at(s) + 0.03)),
            (x(at(1.0) - 0.026), x(at(1.0) + 0.026)),
            skin,
        );
        if let (Bag::Hand(c), true) = (appearance.bag, sign > 0.0 || side) {
            canvas.fill_rect(
                x(at(1.0) - 0.05),
                y(0.47),
                x(at(1.0) + 0.05),
                y(0.58),
                Paint::Solid(c),
            );
        }
    }
    // Torso.
    canvas.fill_trapezoid(
        y(0.14),
        y(0.51),
        (x(-0.115), x(0.115)),
        (x(-0.1), x(0.1)),
        appearance.upper,
    );
    // Bags in front of the torso.
    match appearance.bag {
        Bag::Backpack(c) if pose.view == View::Back => {
            canvas.fill_rect(x(-0.085), y(0.17), x(0.085), y(0.42), Paint::Solid(c));
        }
        Bag::Backpack(c) if pose.view == View::Front => {
            for sx in [-0.075, 0.055] {
                canvas.fill_rect(x(sx), y(0.14), x(sx + 0.02), y(0.33), Paint::Solid(c));
            }
        }
        Bag::Shoulder(c) => {
            let sx = if pose.view == View::Back { -0.16 } else { 0.1 };
            canvas.fill_rect(x(sx), y(0.42), x(sx + 0.08), y(0.54), Paint::Solid(c));
            canvas.fill_trapezoid(
                y(0.14),
                y(0.42),
                (x(-0.08), x(-0.06)),
                (x(sx + 0.03), x(sx + 0.05)),
                Paint::Solid(c),
            );
        }
        _ => {}
    }
    // Neck, head, hair.
    canvas.fill_rect(x(-0.025), y(0.11), x(0.025), y(0.15), skin);
    let head_rx = 0.055 * h * appearance.width.min(1.05);
    canvas.fill_ellipse(pose.cx, y(0.07), head_rx, 0.058 * h, skin);
    let hair = Paint::Solid(appearance.hair);
    match pose.view {
        View::Back => canvas.fill_ellipse(pose.cx, y(0.068), head_rx * 1.05, 0.062 * h, hair),
        View::Front => canvas.fill_ellipse(pose.cx, y(0.045), head_rx * 1.05, 0.036 * h, hair),
        View::Side => canvas.fill_ellipse(
            pose.cx - head_rx * 0.3,
            y(0.05),
            head_rx * 0.95,
            0.045 * h,
            hair,
        ),
    }
    if appearance.long_hair && pose.view == View::Back {
        canvas.fill_rect(pose.cx - head_rx, y(0.07), pose.cx + head_rx, y(0.22), hair);
    }
}

/// Something between camera and person: a pole, a bin or a passer-by's shoulder.
pub fn draw_occluder(canvas: &mut Canvas, rng: &mut StdRng) {
    let (w, h) = (CANVAS_W as f32, CANVAS_H as f32);
    let shade: f32 = rng.random_range(40.0..200.0);
    let paint = Paint::Solid([
        shade,
        shade * rng.random_range(0.8..1.1),
        shade * rng.random_range(0.8..1.2),
    ]);
    match rng.random_range(0..3) {
        0 => {
            let x = rng.random_range(0.1..0.8) * w;
            canvas.fill_rect(x, 0.0, x + rng.random_range(0.08..0.16) * w, h, paint);
        }
        1 => {
            let top = rng.random_range(0.6..0.8) * h;
            canvas.fill_rect(
                rng.random_range(-0.2..0.3) * w,
                top,
                rng.random_range(0.6..1.2) * w,
                h,
                paint,
            );
        }
        _ => {
            let left = rng.random::<bool>();
            let (x0, x1) = if left {
                (-0.2 * w, 0.3 * w)
            } else {
                (0.7 * w, 1.2 * w)
            };
            canvas.fill_ellipse((x0 + x1) / 2.0, 0.6 * h, (x1 - x0) / 2.0, 0.45 * h, paint);
        }
    }
}

/// Lighting, blur and noise of `camera`, with a small per-image brightness change.
pub fn finish(canvas: &mut Canvas, camera: &Camera, rng: &mut StdRng) {
    let brightness = rng.random_range(0.93..1.07);
    canvas.blur(camera.blur);
    let noise: Vec<f32> = (0..canvas.width * canvas.height * 3)
        .map(|_| (rng.random::<f32>() + rng.random::<f32>() - 1.0) * camera.noise)
        .collect();
    let width = canvas.width;
    canvas.map(|x, y, p: Color| {
        let i = (y * width + x) * 3;
        [0, 1, 2].map(|c| p[c] * camera.gain[c] * brightness + noise[i + c])
    });
}
