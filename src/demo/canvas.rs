//! A small floating-point RGB canvas with the few drawing operations the renderer needs.

/// An RGB colour with channels in 0–255.
pub type Color = [f32; 3];

/// How a shape is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Paint {
    /// One colour.
    Solid(Color),
    /// Horizontal stripes of two colours, `period` pixels.
    HStripes(Color, Color, f32),
    /// Vertical stripes.
    VStripes(Color, Color, f32),
    /// A checkerboard.
    Checks(Color, Color, f32),
}

impl Paint {
    /// The colour at canvas position `(x, y)`.
    pub fn at(&self, x: f32, y: f32) -> Color {
        let band = |v: f32, period: f32| (v / period).floor() as i64 % 2 == 0;
        match *self {
            Paint::Solid(c) => c,
            Paint::HStripes(a, b, p) => {
                if band(y, p) {
                    a
                } else {
                    b
                }
            }
            Paint::VStripes(a, b, p) => {
                if band(x, p) {
                    a
                } else {
                    b
                }
            }
            Paint::Checks(a, b, p) => {
                if band(x, p) == band(y, p) {
                    a
                } else {
                    b
                }
            }
        }
    }
}

/// A canvas of `width × height` RGB pixels.
#[derive(Debug, Clone)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    pixels: Vec<Color>,
}

impl Canvas {
    /// A canvas painted by `background(x, y)`.
    pub fn new(width: usize, height: usize, background: impl Fn(usize, usize) -> Color) -> Self {
        let pixels = (0..width * height)
            .map(|i| background(i % width, i / width))
            .collect();
        Canvas {
            width,
            height,
            pixels,
        }
    }

    fn put(&mut self, x: i64, y: i64, color: Color) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            self.pixels[y as usize * self.width + x as usize] = color;
        }
    }

    /// Fills the quadrilateral between rows `y0..y1` whose left and right edges move linearly
    /// from `(l0, r0)` at `y0` to `(l1, r1)` at `y1` (a rectangle when they are equal).
    pub fn fill_trapezoid(
        &mut self,
        y0: f32,
        y1: f32,
        (l0, r0): (f32, f32),
        (l1, r1): (f32, f32),
        paint: Paint,
    ) {
        let rows = y0.round() as i64..y1.round() as i64;
        for y in rows {
            let t = ((y as f32 + 0.5 - y0) / (y1 - y0).max(1e-3)).clamp(0.0, 1.0);
            let (l, r) = (l0 + (l1 - l0) * t, r0 + (r1 - r0) * t);
            for x in l.round() as i64..r.round() as i64 {
                self.put(x, y, paint.at(x as f32, y as f32));
            }
        }
    }

    /// Fills an axis-aligned rectangle.
    pub fn fill_rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, paint: Paint) {
        self.fill_trapezoid(y0, y1, (x0, x1), (x0, x1), paint);
    }

    /// Fills an axis-aligned ellipse.
    pub fn fill_ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, paint: Paint) {
        for y in (cy - ry).floor() as i64..=(cy + ry).ceil() as i64 {
            let dy = (y as f32 + 0.5 - cy) / ry;
            if dy.abs() > 1.0 {
                continue;
            }
            let half = rx * (1.0 - dy * dy).sqrt();
            for x in (cx - half).round() as i64..(cx + half).round() as i64 {
                self.put(x, y, paint.at(x as f32, y as f32));
            }
        }
    }

    /// Applies `f` to every pixel.
    pub fn map(&mut self, f: impl Fn(usize, usize, Color) -> Color) {
        let width = self.width;
        for (i, p) in self.pixels.iter_mut().enumerate() {
            *p = f(i % width, i / width, *p);
        }
    }

    /// Box blur of radius `radius` (pixels), horizontally then vertically.
    pub fn blur(&mut self, radius: usize) {
        if radius == 0 {
            return;
        }
        let (w, h) = (self.width, self.height);
        let pass = |src: &[Color], step: usize, len: usize, lines: usize, stride: usize| {
            let mut out = src.to_vec();
            for line in 0..lines {
                for i in 0..len {
                    let lo = i.saturating_sub(radius);
                    let hi = (i + radius).min(len - 1);
                    let mut sum = [0.0f32; 3];
                    for j in lo..=hi {
                        let p = src[line * stride + j * step];
                        (0..3).for_each(|c| sum[c] += p[c]);
                    }
                    let n = (hi - lo + 1) as f32;
                    out[line * stride + i * step] = sum.map(|s| s / n);
                }
            }
            out
        };
        let horizontal = pass(&self.pixels, 1, w, h, w);
        self.pixels = pass(&horizontal, w, h, w, 1);
    }

    /// Interleaved 8-bit RGB.
    pub fn to_rgb8(&self) -> Vec<u8> {
        self.pixels
            .iter()
            .flat_map(|p| p.map(|c| c.round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}
