//! Cameras: each a consistent scene — background, illumination and colour cast, blur, noise,
//! typical viewpoint, framing jitter and how often something occludes the person.

use rand::Rng;
use rand::rngs::StdRng;

use super::canvas::{Canvas, Color};

/// Which side of the person faces the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Walking towards the camera.
    Front,
    /// Walking away.
    Back,
    /// Walking across.
    Side,
}

/// One camera's look.
#[derive(Debug, Clone)]
pub struct Camera {
    wall: Color,
    ground: Color,
    horizon: f32,
    tile: f32,
    clutter: Vec<(f32, f32, f32, f32, Color)>,
    /// Per-channel gain (illumination × colour cast).
    pub gain: Color,
    /// Box-blur radius on the 2× canvas.
    pub blur: usize,
    /// Noise amplitude (0–255 units).
    pub noise: f32,
    /// Probabilities of front, back and side views.
    pub views: [f32; 3],
    /// Framing jitter (fraction of the crop).
    pub jitter: f32,
    /// Probability of an occluder.
    pub occlusion: f32,
}

fn color(rng: &mut StdRng, low: f32, high: f32) -> Color {
    [0; 3].map(|_| rng.random_range(low..high))
}

/// A muted colour: a random colour pulled halfway towards its grey.
fn muted(rng: &mut StdRng, low: f32, high: f32) -> Color {
    let c = color(rng, low, high);
    let grey = (c[0] + c[1] + c[2]) / 3.0;
    c.map(|v| 0.4 * v + 0.6 * grey)
}

impl Camera {
    /// A random camera.
    pub fn random(rng: &mut StdRng) -> Self {
        let light = rng.random_range(0.7..1.2);
        let cast = color(rng, 0.86, 1.14);
        let mut views = [
            rng.random_range(0.1..1.0),
            rng.random_range(0.1..1.0),
            rng.random_range(0.05..0.6),
        ];
        let total: f32 = views.iter().sum();
        views.iter_mut().for_each(|v| *v /= total);
        let clutter = (0..rng.random_range(6..14))
            .map(|_| {
                let x = rng.random_range(-1.0..2.0);
                let y = rng.random_range(0.0..0.6);
                (
                    x,
                    y,
                    x + rng.random_range(0.1..0.4),
                    y + rng.random_range(0.1..0.4),
                    muted(rng, 40.0, 220.0),
                )
            })
            .collect();
        Camera {
            wall: muted(rng, 70.0, 200.0),
            ground: muted(rng, 60.0, 160.0),
            horizon: rng.random_range(0.45..0.75),
            tile: rng.random_range(10.0..40.0),
            clutter,
            gain: cast.map(|c| c * light),
            blur: rng.random_range(0..=2),
            noise: rng.random_range(2.0..9.0),
            views,
            jitter: rng.random_range(0.02..0.06),
            occlusion: rng.random_range(0.0..0.25),
        }
    }

    /// A view drawn from this camera's typical ones.
    pub fn view(&self, rng: &mut StdRng) -> View {
        let r: f32 = rng.random();
        if r < self.views[0] {
            View::Front
        } else if r < self.views[0] + self.views[1] {
            View::Back
        } else {
            View::Side
        }
    }

    /// The background seen through a crop shifted by `(dx, dy)` (fractions of the crop).
    pub fn background(&self, width: usize, height: usize, (dx, dy): (f32, f32)) -> Canvas {
        let (w, h) = (width as f32, height as f32);
        Canvas::new(width, height, |x, y| {
            let (u, v) = (x as f32 / w + dx, y as f32 / h + dy);
            for &(x0, y0, x1, y1, c) in &self.clutter {
                if u >= x0 && u < x1 && v >= y0 && v < y1 && v < self.horizon {
                    return c;
                }
            }
            if v < self.horizon {
                self.wall
            } else {
                let tile = ((u * w / self.tile).floor() + (v * h / self.tile).floor()) as i64 % 2;
                self.ground.map(|c| c * if tile == 0 { 1.0 } else { 0.88 })
            }
        })
    }
}
