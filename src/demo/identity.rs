//! Identities: a consistent appearance (clothing colours and patterns, hair, skin, bag, shoes,
//! body proportions), sampled at random, some of them as near copies of others (hard negatives).

use rand::Rng;
use rand::rngs::StdRng;

use super::canvas::{Color, Paint};

/// Clothing colours, roughly as often seen in street crowds.
const CLOTHING: [Color; 16] = [
    [25.0, 25.0, 28.0],    // black
    [235.0, 235.0, 230.0], // white
    [128.0, 128.0, 130.0], // grey
    [30.0, 40.0, 90.0],    // navy
    [190.0, 30.0, 35.0],   // red
    [50.0, 100.0, 190.0],  // blue
    [40.0, 120.0, 60.0],   // green
    [230.0, 200.0, 50.0],  // yellow
    [110.0, 70.0, 40.0],   // brown
    [210.0, 190.0, 150.0], // beige
    [230.0, 140.0, 170.0], // pink
    [110.0, 50.0, 140.0],  // purple
    [235.0, 120.0, 30.0],  // orange
    [100.0, 140.0, 200.0], // light blue (denim)
    [80.0, 90.0, 50.0],    // olive
    [160.0, 40.0, 80.0],   // burgundy
];

const SKIN: [Color; 5] = [
    [245.0, 210.0, 180.0],
    [225.0, 180.0, 145.0],
    [190.0, 140.0, 100.0],
    [140.0, 95.0, 65.0],
    [95.0, 65.0, 45.0],
];

const HAIR: [Color; 5] = [
    [20.0, 15.0, 12.0],
    [70.0, 45.0, 25.0],
    [150.0, 110.0, 60.0],
    [200.0, 170.0, 110.0],
    [150.0, 150.0, 150.0],
];

/// Lower-body garment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lower {
    /// Long trousers.
    Trousers,
    /// Shorts (skin below the knee).
    Shorts,
    /// A skirt.
    Skirt,
}

/// What the person carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bag {
    /// Nothing.
    None,
    /// A backpack of this colour.
    Backpack(Color),
    /// A shoulder bag at the hip.
    Shoulder(Color),
    /// A handbag at hand height.
    Hand(Color),
}

/// Everything that makes one identity look like itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    /// Shirt / jacket.
    pub upper: Paint,
    /// Short sleeves (forearms show skin).
    pub short_sleeves: bool,
    /// Trousers / shorts / skirt colour.
    pub lower_paint: Paint,
    /// Kind of lower garment.
    pub lower: Lower,
    /// Skin colour.
    pub skin: Color,
    /// Hair colour.
    pub hair: Color,
    /// Long hair.
    pub long_hair: bool,
    /// Shoe colour.
    pub shoes: Color,
    /// Bag.
    pub bag: Bag,
    /// Body width relative to average.
    pub width: f32,
    /// Body height relative to the crop.
    pub height: f32,
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

/// A colour from the palette with a small per-identity shift, so that two identities in
/// "the same" colour differ slightly.
fn clothing(rng: &mut StdRng) -> Color {
    pick(rng, &CLOTHING).map(|c| (c + rng.random_range(-18.0..18.0)).clamp(0.0, 255.0))
}

fn garment(rng: &mut StdRng) -> Paint {
    let (a, b) = (clothing(rng), clothing(rng));
    match rng.random_range(0..10) {
        0..=5 => Paint::Solid(a),
        6 => Paint::HStripes(a, b, rng.random_range(5.0..10.0)),
        7 => Paint::VStripes(a, b, rng.random_range(5.0..9.0)),
        8 => Paint::Checks(a, b, rng.random_range(5.0..9.0)),
        _ => Paint::HStripes(a, b, rng.random_range(14.0..22.0)),
    }
}

fn bag(rng: &mut StdRng) -> Bag {
    match rng.random_range(0..10) {
        0..=3 => Bag::None,
        4..=6 => Bag::Backpack(clothing(rng)),
        7..=8 => Bag::Shoulder(clothing(rng)),
        _ => Bag::Hand(clothing(rng)),
    }
}

impl Appearance {
    /// A random appearance.
    pub fn random(rng: &mut StdRng) -> Self {
        Appearance {
            upper: garment(rng),
            short_sleeves: rng.random_bool(0.35),
            lower_paint: if rng.random_bool(0.85) {
                Paint::Solid(clothing(rng))
            } else {
                garment(rng)
            },
            lower: match rng.random_range(0..10) {
                0..=6 => Lower::Trousers,
                7..=8 => Lower::Shorts,
                _ => Lower::Skirt,
            },
            skin: pick(rng, &SKIN),
            hair: pick(rng, &HAIR),
            long_hair: rng.random_bool(0.3),
            shoes: clothing(rng),
            bag: bag(rng),
            width: rng.random_range(0.85..1.15),
            height: rng.random_range(0.9..0.98),
        }
    }

    /// A near copy of `self` that differs in one or two attributes: a hard negative.
    pub fn variant(&self, rng: &mut StdRng) -> Self {
        let mut other = self.clone();
        let changes = rng.random_range(1..=2);
        for _ in 0..changes {
            match rng.random_range(0..6) {
                0 => other.bag = bag(rng),
                1 => other.upper = garment(rng),
                2 => other.lower_paint = Paint::Solid(clothing(rng)),
                3 => {
                    other.hair = pick(rng, &HAIR);
                    other.long_hair = !other.long_hair;
                }
                4 => other.shoes = clothing(rng),
                _ => other.short_sleeves = !other.short_sleeves,
            }
        }
        other.width = (self.width + rng.random_range(-0.05..0.05)).clamp(0.8, 1.2);
        other
    }
}

/// Appearances of `count` identities; about a third are variants of an earlier one.
pub fn appearances(rng: &mut StdRng, count: usize) -> Vec<Appearance> {
    let mut all: Vec<Appearance> = Vec::with_capacity(count);
    for _ in 0..count {
        let appearance = if !all.is_empty() && rng.random_bool(0.33) {
            let source = rng.random_range(0..all.len());
            all[source].variant(rng)
        } else {
            Appearance::random(rng)
        };
        all.push(appearance);
    }
    all
}
