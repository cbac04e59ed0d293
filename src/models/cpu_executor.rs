//! The CPU inference executor: a network's eval-mode forward pass, written once as [`Flow`]
//! operations, run on plain f32 buffers by the kernels of `reidscope-kernels`.
//!
//! Layers run from their folded host values (BatchNorm folded in, the activation that follows
//! applied by the same kernel). A batch with at least as many images as the pool has threads
//! runs on single-threaded kernels, so threads never wait for each other inside a layer: the
//! network's early part (large maps) image by image, then its late part (small maps, many
//! weights) on several images stacked into one map; a smaller batch runs whole, every kernel
//! split over the pool. A map no operation holds any more is recycled as a later output, and
//! a thread keeps a few buffers for its next pass (at most [`KEPT_BYTES`]), so passes rarely
//! allocate.

use std::cell::RefCell;
use std::rc::Rc;

use rayon::prelude::*;
use reidscope_kernels::{self as kernels, Activation, Shape, Threads};

use crate::models::batch_norm::EPSILON;
use crate::models::flow::Flow;
use crate::models::folded;
use crate::models::layers::{Conv, ConvBn, InstanceNorm, Linear};
use crate::models::network::Network;

/// Spare buffers an executor keeps for later outputs.
const SPARE_BUFFERS: usize = 64;
/// Most images whose maps a thread stacks into one for the late part of a pass.
const STACKED_IMAGES: usize = 4;
/// Most images whose early maps are held at once.
const WAVE_IMAGES: usize = 64;
/// Most bytes of spare buffers a thread keeps for its next pass.
const KEPT_BYTES: usize = 64 << 20;

thread_local! {
    /// The buffers the last executor on this thread left for the next one.
    static KEPT: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// Eval-mode features of `network` for a normalised batch `[n, 3, h, w]`: `n` rows.
pub fn features(network: &Network, batch: &[f32], shape: Shape) -> Vec<f32> {
    run(network, batch, shape, |executor, map| {
        network.features_of_map(executor, map).values
    })
    .concat()
}

/// Eval-mode feature maps of `network` before global pooling for a normalised batch
/// `[n, 3, h, w]`: their values and shape `[n, c, h', w']`.
pub fn feature_maps(network: &Network, batch: &[f32], shape: Shape) -> (Vec<f32>, Shape) {
    let maps = run(network, batch, shape, |executor, map| {
        let values = executor.own(map);
        (values.values().to_vec(), values.shape)
    });
    let mut map_shape = maps.first().map_or([0; 4], |(_, shape)| *shape);
    map_shape[0] = shape[0];
    let values = maps.into_iter().flat_map(|(values, _)| values).collect();
    (values, map_shape)
}

/// Runs `network`'s feature map ([`Network::early_map`], then [`Network::late_map`]) on the
/// batch, then `finish` on it.
///
/// A batch with at least as many images as the pool has threads runs in waves of up to
/// [`WAVE_IMAGES`] images: the early part image by image, each image on one thread, so its
/// large maps stay in cache; then the late part on the wave's maps in stacks of up to
/// [`STACKED_IMAGES`], each on one thread, so its layers read their weights once for several
/// images. A smaller batch runs whole, every kernel split over the pool.
fn run<T: Send>(
    network: &Network,
    batch: &[f32],
    shape: Shape,
    finish: impl Fn(&mut CpuExecutor, HostMap) -> T + Sync,
) -> Vec<T> {
    let [n, c, h, w] = shape;
    let image_len = c * h * w;
    assert_eq!(batch.len(), n * image_len, "a batch of its shape");
    let threads = rayon::current_num_threads();
    if n > 1 && n >= threads {
        let stacked = (n / threads).clamp(1, STACKED_IMAGES);
        let mut results = Vec::with_capacity(n.div_ceil(stacked));
        for wave in batch.chunks(WAVE_IMAGES * image_len) {
            let early: Vec<MapValues> = wave
                .par_chunks(image_len)
                .map_init(
                    || CpuExecutor::new(Threads::One),
                    |executor, image| {
                        let x = executor.input(image, [1, c, h, w]);
                        let map = network.early_map(executor, x);
                        executor.own(map)
                    },
                )
                .collect();
            let late_results: Vec<T> = early
                .par_chunks(stacked)
                .map_init(
                    || CpuExecutor::new(Threads::One),
                    |executor, maps| {
                        let x = executor.stack(maps);
                        let map = network.late_map(executor, x);
                        finish(executor, map)
                    },
                )
                .collect();
            results.extend(late_results);
        }
        results
    } else {
        // On a worker of the pool, so the kernels' parallel loops start without a hand-off.
        rayon::scope(|_| {
            let mut executor = CpuExecutor::new(Threads::Pool);
            let x = executor.input(batch, shape);
            let map = network.feature_map(&mut executor, x);
            vec![finish(&mut executor, map)]
        })
    }
}

/// A feature map on the host, shared by the operations that read it.
#[derive(Debug, Clone)]
pub struct HostMap(Rc<MapValues>);

/// A feature map's values (a buffer at least as long as its shape needs) and shape.
#[derive(Debug)]
struct MapValues {
    buffer: Vec<f32>,
    shape: Shape,
}

impl MapValues {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn values(&self) -> &[f32] {
        &self.buffer[..self.len()]
    }

    fn values_mut(&mut self) -> &mut [f32] {
        let len = self.len();
        &mut self.buffer[..len]
    }
}

/// One vector per image, `[n, width]` row-major.
#[derive(Debug)]
pub struct HostRows {
    values: Vec<f32>,
}

/// Runs [`Flow`] operations on host buffers.
pub struct CpuExecutor {
    threads: Threads,
    spare: Vec<Vec<f32>>,
}

impl CpuExecutor {
    fn new(threads: Threads) -> Self {
        Self {
            threads,
            spare: KEPT.with_borrow_mut(std::mem::take),
        }
    }

    /// A buffer of at least `len` values: the smallest spare one that fits without wasting
    /// more than half of it (so large buffers stay for large maps), or a new one.
    fn buffer(&mut self, len: usize) -> Vec<f32> {
        let best = (self.spare.iter().enumerate())
            .filter(|(_, b)| (len..=2 * len).contains(&b.len()))
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i);
        match best {
            Some(i) => self.spare.swap_remove(i),
            None => vec![0.0; len],
        }
    }

    /// Keeps the buffer of `map` for later outputs when no other operation holds the map.
    fn recycle(&mut self, map: HostMap) {
        if let Ok(values) = Rc::try_unwrap(map.0) {
            self.spare.push(values.buffer);
            if self.spare.len() > SPARE_BUFFERS {
                let smallest = (self.spare.iter().enumerate())
                    .min_by_key(|(_, b)| b.len())
                    .map(|(i, _)| i);
                if let Some(i) = smallest {
                    self.spare.swap_remove(i);
                }
            }
        }
    }

    /// The values of `map` to change in place: its own when no other operation holds it, a
    /// copy otherwise.
    fn own(&mut self, map: HostMap) -> MapValues {
        Rc::try_unwrap(map.0).unwrap_or_else(|shared| {
            let mut buffer = self.buffer(shared.len());
            buffer[..shared.len()].copy_from_slice(shared.values());
            MapValues {
                buffer,
                shape: shared.shape,
            }
        })
    }

    /// A map holding a copy of `values`.
    fn input(&mut self, values: &[f32], shape: Shape) -> HostMap {
        let mut buffer = self.buffer(values.len());
        buffer[..values.len()].copy_from_slice(values);
        HostMap(Rc::new(MapValues { buffer, shape }))
    }

    /// One map of the images of `maps`, which share their other dimensions.
    fn stack(&mut self, maps: &[MapValues]) -> HostMap {
        let mut shape = maps[0].shape;
        shape[0] = maps.iter().map(|map| map.shape[0]).sum();
        let mut buffer = self.buffer(shape.iter().product());
        let mut at = 0;
        for map in maps {
            buffer[at..at + map.len()].copy_from_slice(map.values());
            at += map.len();
        }
        HostMap(Rc::new(MapValues { buffer, shape }))
    }

    /// A new map of `shape` whose values `fill` writes from those of `x`, which is then
    /// recycled.
    fn produce(
        &mut self,
        x: HostMap,
        shape: Shape,
        fill: impl FnOnce(&[f32], Shape, &mut [f32], Threads),
    ) -> HostMap {
        let mut out = MapValues {
            buffer: self.buffer(shape.iter().product()),
            shape,
        };
        fill(x.0.values(), x.0.shape, out.values_mut(), self.threads);
        self.recycle(x);
        HostMap(Rc::new(out))
    }

    /// `change` applied to the values of `x` in place.
    fn in_place(&mut self, x: HostMap, change: impl FnOnce(&mut [f32], Shape, Threads)) -> HostMap {
        let mut values = self.own(x);
        let shape = values.shape;
        change(values.values_mut(), shape, self.threads);
        HostMap(Rc::new(values))
    }

    fn convolve(&mut self, conv: Option<&folded::Conv>, x: HostMap, act: Activation) -> HostMap {
        let conv = inference_form(conv).kernel();
        let shape = conv.output_shape(x.0.shape);
        self.produce(x, shape, |x, shape, out, threads| {
            conv.run(x, shape, out, act, threads);
        })
    }

    fn dense(&mut self, layer: &Linear, x: HostRows, act: Activation) -> HostRows {
        let (weight, bias) = inference_form(layer.folded()).values();
        let inputs = weight.len() / bias.len().max(1);
        let rows = x.values.len() / inputs.max(1);
        let mut values = vec![0.0; rows * bias.len()];
        kernels::linear(
            &x.values,
            rows,
            weight,
            bias,
            act,
            &mut values,
            self.threads,
        );
        HostRows { values }
    }
}

impl Drop for CpuExecutor {
    /// Leaves the smallest spare buffers, up to [`KEPT_BYTES`], to the thread's next pass.
    fn drop(&mut self) {
        let mut spare = std::mem::take(&mut self.spare);
        spare.sort_by_key(Vec::len);
        let mut bytes = 0;
        spare.retain(|buffer| {
            bytes += buffer.len() * size_of::<f32>();
            bytes <= KEPT_BYTES
        });
        KEPT.with_borrow_mut(|kept| *kept = spare);
    }
}

/// A layer's folded form, which every layer of a model built for inference has.
fn inference_form<T>(form: Option<&T>) -> &T {
    form.expect("a network built for inference has the folded form of every layer")
}

impl Flow for CpuExecutor {
    type Map = HostMap;
    type Vector = HostRows;

    fn conv_bn(&mut self, layer: &ConvBn, x: HostMap, act: Activation) -> HostMap {
        self.convolve(layer.folded(), x, act)
    }

    fn conv_bn_add(
        &mut self,
        layer: &ConvBn,
        x: HostMap,
        residual: HostMap,
        act: Activation,
    ) -> HostMap {
        let conv = inference_form(layer.folded()).kernel();
        // The sum is written over the residual's values, the convolution's added as the
        // kernel writes them.
        let mut sum = self.own(residual);
        assert_eq!(
            sum.shape,
            conv.output_shape(x.0.shape),
            "a residual of the convolution's output shape"
        );
        let threads = self.threads;
        conv.run_adding(x.0.values(), x.0.shape, sum.values_mut(), act, threads);
        self.recycle(x);
        HostMap(Rc::new(sum))
    }

    fn conv(&mut self, layer: &Conv, x: HostMap) -> HostMap {
        self.convolve(layer.folded(), x, Activation::Identity)
    }

    fn instance_norm(&mut self, layer: &InstanceNorm, x: HostMap, act: Activation) -> HostMap {
        let (gamma, beta) = inference_form(layer.folded()).affine();
        self.in_place(x, |values, shape, threads| {
            kernels::instance_norm(values, shape, gamma, beta, EPSILON, act, threads);
        })
    }

    fn linear(&mut self, layer: &Linear, x: HostRows) -> HostRows {
        self.dense(layer, x, Activation::Identity)
    }

    fn linear_relu(&mut self, layer: &Linear, x: HostRows) -> HostRows {
        self.dense(layer, x, Activation::Relu)
    }

    fn add(&mut self, a: HostMap, b: HostMap) -> HostMap {
        // Sum into whichever summand no other operation holds.
        let (a, b) = if Rc::strong_count(&a.0) == 1 {
            (a, b)
        } else {
            (b, a)
        };
        let sum = self.in_place(a, |values, _, threads| {
            kernels::add(values, b.0.values(), Activation::Identity, threads);
        });
        self.recycle(b);
        sum
    }

    fn relu(&mut self, x: HostMap) -> HostMap {
        self.in_place(x, |values, _, threads| {
            kernels::activate(values, Activation::Relu, threads);
        })
    }

    fn stem_max_pool(&mut self, x: HostMap) -> HostMap {
        let [n, c, h, w] = x.0.shape;
        let shape = [n, c, (h - 1) / 2 + 1, (w - 1) / 2 + 1];
        self.produce(x, shape, kernels::max_pool_3x3_s2)
    }

    fn avg_pool_2x2(&mut self, x: HostMap) -> HostMap {
        let [n, c, h, w] = x.0.shape;
        self.produce(x, [n, c, h / 2, w / 2], kernels::avg_pool_2x2)
    }

    fn global_avg_pool(&mut self, x: HostMap) -> HostRows {
        let [n, c, _, _] = x.0.shape;
        let mut values = vec![0.0; n * c];
        kernels::global_avg_pool(x.0.values(), x.0.shape, &mut values, self.threads);
        self.recycle(x);
        HostRows { values }
    }

    fn gate(&mut self, x: HostMap, logits: HostRows) -> HostMap {
        self.in_place(x, |values, shape, threads| {
            kernels::gate(values, shape, &logits.values, threads);
        })
    }
}

#[cfg(test)]
mod tests {
    //! The kernels against Burn's own operations on its CPU backend, at odd sizes (1×1
    //! planes, widths that are not a multiple of the vector width, batch 1), on one thread
    //! and on the pool; and whole networks image by image against the whole batch at once.

    use std::sync::OnceLock;

    use burn::tensor::activation;
    use burn::tensor::module::{avg_pool2d, conv2d, linear, max_pool2d};
    use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};

    use super::*;
    use crate::backend::{Backend, DeviceChoice, Precision};
    use crate::models::test_values::{CONV_CASES, assert_close, random, tensor, values};
    use crate::models::{Model, ModelName};

    /// An activation and what it does to a value.
    type Reference = (Activation, fn(f32) -> f32);

    const ACTIVATIONS: [Reference; 3] = [
        (Activation::Identity, |v| v),
        (Activation::Relu, |v| v.max(0.0)),
        (Activation::Relu6, |v| v.clamp(0.0, 6.0)),
    ];

    #[test]
    fn convolutions_equal_burns_and_add_to_a_residual() {
        for (seed, (shape, out, k, stride, padding, groups)) in CONV_CASES.into_iter().enumerate() {
            let seed = seed as u64 * 10;
            let x: Vec<f32> = random(shape.iter().product(), seed)
                .iter()
                .map(|v| v * 3.0)
                .collect();
            let weight = random(out * shape[1] / groups * k * k, seed + 1);
            let bias = random(out, seed + 2);
            let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups);
            let burn = conv2d(
                tensor(&x, shape),
                tensor(&weight, [out, shape[1] / groups, k, k]),
                Some(tensor(&bias, [out])),
                options,
            );
            let expected_shape = burn.dims();
            let expected = values(burn);
            let winograd = OnceLock::new();
            let conv = kernels::Conv {
                weight: &weight,
                bias: &bias,
                in_channels: shape[1],
                kernel: k,
                stride,
                padding,
                groups,
                winograd: Some(&winograd),
            };
            assert_eq!(conv.output_shape(shape), expected_shape);
            // Winograd's transformed sums (3×3, stride 1, one group) round at a few times the
            // magnitude of the input's values, which are up to 6 here.
            let tolerance = if (k, stride, groups) == (3, 1, 1) {
                5e-5
            } else {
                1e-5
            };
            let residual = random(expected.len(), seed + 3);
            for threads in [Threads::One, Threads::Pool] {
                for (act, f) in ACTIVATIONS {
                    let mut got = vec![f32::NAN; expected.len()];
                    conv.run(&x, shape, &mut got, act, threads);
                    let activated: Vec<f32> = expected.iter().map(|&v| f(v)).collect();
                    let what = format!("{shape:?} k{k} s{stride} g{groups} {threads:?} {act:?}");
                    assert_close(&got, &activated, tolerance, &what);
                    let mut sum = residual.clone();
                    conv.run_adding(&x, shape, &mut sum, act, threads);
                    // Within the convolution's own tolerance, which is relative to its value
                    // (the sum may cancel it).
                    for (i, ((&got, &v), &r)) in
                        sum.iter().zip(&expected).zip(&residual).enumerate()
                    {
                        let close = (got - f(v + r)).abs() <= tolerance * (1.0 + v.abs() + r.abs());
                        assert!(close, "{what}, adding, element {i}: {got} vs {}", f(v + r));
                    }
                }
            }
        }
    }

    #[test]
    fn pools_equal_burns_and_max_pooling_keeps_nan() {
        let cases = [
            ([2, 3, 7, 5], 1),
            ([1, 2, 8, 6], 2),
            ([1, 1, 1, 1], 3),
            ([1, 2, 9, 37], 4),
            ([2, 1, 6, 66], 5),
            ([1, 2, 3, 4], 6),
            ([1, 1, 2, 3], 7),
        ];
        for (shape, seed) in cases {
            let mut x = random(shape.iter().product(), seed);
            let nan_at = 4.min(x.len() - 1);
            x[nan_at] = f32::NAN;
            let options = MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]);
            let expected = max_pool2d(tensor(&x, shape), options);
            let mut got = vec![0.0; expected.dims().iter().product()];
            kernels::max_pool_3x3_s2(&x, shape, &mut got, Threads::Pool);
            assert!(got.iter().any(|v| v.is_nan()), "NaN kept");
            assert_close(&got, &values(expected), 0.0, "max pool");
        }
        for shape in [[2, 3, 6, 4], [1, 2, 7, 9]] {
            let x = random(shape.iter().product(), 4);
            let options = AvgPoolOptions::new([2, 2]).with_stride([2, 2]);
            let expected = avg_pool2d(tensor(&x, shape), options);
            let mut got = vec![0.0; expected.dims().iter().product()];
            kernels::avg_pool_2x2(&x, shape, &mut got, Threads::One);
            assert_close(&got, &values(expected), 1e-6, "average pool");
        }
        for shape in [[2, 3, 5, 11], [1, 4, 1, 1]] {
            let x = random(shape.iter().product(), 5);
            let expected = tensor(&x, shape).mean_dims(&[2, 3]);
            let mut got = vec![0.0; shape[0] * shape[1]];
            kernels::global_avg_pool(&x, shape, &mut got, Threads::Pool);
            assert_close(&got, &values(expected), 1e-6, "global average pool");
        }
    }

    #[test]
    fn instance_norm_gate_and_linear_equal_burns() {
        let target =
            folded::FoldTarget::new(&Backend::select(DeviceChoice::Cpu, Precision::F32).unwrap());
        for shape in [[2, 3, 4, 5], [1, 2, 1, 1], [1, 3, 3, 11]] {
            let x = random(shape.iter().product(), 8);
            let c = shape[1];
            let norm = folded::InstanceNorm::new(random(c, 9), random(c, 10), &target);
            let (gamma, beta) = norm.affine();
            for (act, _) in ACTIVATIONS {
                let expected = values(norm.forward(tensor(&x, shape), act));
                let mut got = x.clone();
                kernels::instance_norm(&mut got, shape, gamma, beta, EPSILON, act, Threads::Pool);
                assert_close(&got, &expected, 1e-5, "instance norm");
            }
            let logits = random(shape[0] * c, 11);
            let gates = activation::sigmoid(tensor(&logits, [shape[0], c]));
            let expected = values(tensor(&x, shape) * gates.reshape([shape[0], c, 1, 1]));
            let mut got = x.clone();
            kernels::gate(&mut got, shape, &logits, Threads::One);
            assert_close(&got, &expected, 1e-6, "gate");
        }
        for (rows, inputs, outputs) in [(1, 5, 3), (3, 17, 9)] {
            let x = random(rows * inputs, 12);
            let weight = random(inputs * outputs, 13);
            let bias = random(outputs, 14);
            let expected = values(linear(
                tensor(&x, [rows, inputs]),
                tensor(&weight, [inputs, outputs]),
                Some(tensor(&bias, [outputs])),
            ));
            for (act, f) in ACTIVATIONS {
                let mut got = vec![0.0; rows * outputs];
                kernels::linear(&x, rows, &weight, &bias, act, &mut got, Threads::Pool);
                let activated: Vec<f32> = expected.iter().map(|&v| f(v)).collect();
                assert_close(&got, &activated, 1e-5, "linear");
            }
        }
    }

    #[test]
    fn a_batch_run_in_waves_and_stacks_equals_the_batch_run_whole() {
        let cpu = Backend::select(DeviceChoice::Cpu, Precision::F32).unwrap();
        for name in [
            ModelName::OsnetIbnX1_0,
            ModelName::Mobilenetv2X1_0,
            ModelName::Resnet50,
        ] {
            let model = Model::random(name, 3, &cpu).unwrap();
            let shape = [5, 3, 64, 32];
            let batch = random(shape.iter().product(), 15);
            let pool = |threads| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
            };
            // One thread: the batch runs whole, every kernel on the pool (of one).
            let whole = pool(1).install(|| features(&model.network, &batch, shape));
            // Two threads, five images: the early part image by image, the late part on
            // stacks of two, two and one images.
            let stacked = pool(2).install(|| features(&model.network, &batch, shape));
            assert_close(&stacked, &whole, 1e-5, name.name());
            let (maps, map_shape) = pool(2).install(|| feature_maps(&model.network, &batch, shape));
            let (whole_maps, whole_shape) =
                pool(1).install(|| feature_maps(&model.network, &batch, shape));
            assert_eq!(map_shape, whole_shape);
            assert_close(&maps, &whole_maps, 1e-5, name.name());
        }
    }
}
