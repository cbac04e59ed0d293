//! Training batches: the images of each sampled batch decoded, resized and augmented in
//! parallel, one batch ahead of the training step. Every image draws its augmentations from a
//! generator seeded by (seed, epoch, batch, position), so an epoch's batches are the same
//! whatever the thread timing.

use std::ops::ControlFlow;
use std::path::PathBuf;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;

use super::augment::{Augment, RgbImage, augment};
use crate::data::image::{ImageError, Preprocess};
use crate::prefetch::prefetch;

/// One training batch.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBatch {
    /// Stacked normalised CHW images, `[images, 3, height, width]` row-major.
    pub inputs: Vec<f32>,
    /// `[images, 3, height, width]`.
    pub shape: [usize; 4],
    /// The training label of each image.
    pub labels: Vec<usize>,
}

/// The train split as batches are made from it.
#[derive(Debug, Clone)]
pub struct TrainImages {
    /// Image files.
    pub paths: Vec<PathBuf>,
    /// Training label of each image.
    pub labels: Vec<usize>,
    /// Network input size.
    pub size: Preprocess,
    /// Augmentations.
    pub augments: Vec<Augment>,
    /// Seed of the run.
    pub seed: u64,
}

impl TrainImages {
    /// Batch `number` of `epoch`, made of the images at `indices`.
    pub fn batch(
        &self,
        epoch: usize,
        number: usize,
        indices: &[usize],
    ) -> Result<TrainBatch, ImageError> {
        let (height, width) = (self.size.height as usize, self.size.width as usize);
        let images: Vec<Vec<f32>> = indices
            .par_iter()
            .enumerate()
            .map(|(position, &index)| {
                let path = &self.paths[index];
                let pixels = self.size.load_resized(path)?;
                let stream = [self.seed, epoch as u64, number as u64, position as u64]
                    .iter()
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, &v| {
                        (h ^ v).wrapping_mul(0x0100_0000_01b3)
                    });
                let image = RgbImage {
                    pixels,
                    width,
                    height,
                };
                Ok(augment(
                    image,
                    &self.augments,
                    &mut StdRng::seed_from_u64(stream),
                ))
            })
            .collect::<Result<_, ImageError>>()?;
        Ok(TrainBatch {
            inputs: images.concat(),
            shape: [indices.len(), 3, height, width],
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        })
    }

    /// Makes the `batches` (sample indices) of `epoch` one ahead of `step`, which receives
    /// them in order; stops at the first image that cannot be read (returned as the error) or
    /// when `step` breaks (its value returned).
    pub fn run_epoch<B>(
        &self,
        epoch: usize,
        batches: &[Vec<usize>],
        mut step: impl FnMut(TrainBatch) -> ControlFlow<B>,
    ) -> Result<Option<B>, ImageError> {
        let outcome = prefetch(
            batches.iter().enumerate(),
            |(number, indices)| self.batch(epoch, number, indices),
            |made| match made {
                Ok(batch) => match step(batch) {
                    ControlFlow::Break(value) => ControlFlow::Break(Ok(value)),
                    ControlFlow::Continue(()) => ControlFlow::Continue(()),
                },
                Err(error) => ControlFlow::Break(Err(error)),
            },
        );
        outcome.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DEMO_DATASET, bundled};

    fn demo_train(augments: Vec<Augment>) -> TrainImages {
        let dataset =
            crate::data::load_dataset(crate::data::DatasetKind::Market1501, &bundled(DEMO_DATASET))
                .unwrap();
        let train = &dataset.split.train[..12];
        TrainImages {
            paths: train.iter().map(|s| s.path.clone()).collect(),
            labels: (0..train.len()).map(|i| i % 3).collect(),
            size: Preprocess {
                height: 32,
                width: 16,
            },
            augments,
            seed: 9,
        }
    }

    #[test]
    fn batches_arrive_in_order_and_repeat_for_a_seed() {
        let images = demo_train(vec![Augment::Flip, Augment::Crop, Augment::Erase]);
        let batches = vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10, 11]];
        let collect = || {
            let mut made = Vec::new();
            let stopped = images
                .run_epoch(0, &batches, |batch| {
                    made.push(batch);
                    ControlFlow::<()>::Continue(())
                })
                .unwrap();
            assert_eq!(stopped, None);
            made
        };
        let (first, second) = (collect(), collect());
        assert_eq!(
            first, second,
            "the same seed and epoch give the same batches"
        );
        assert_eq!(first.len(), 3);
        assert_eq!(first[1].shape, [4, 3, 32, 16]);
        assert_eq!(first[1].labels, vec![1, 2, 0, 1]);
        assert_eq!(first[1].inputs.len(), 4 * 3 * 32 * 16);
        let next_epoch = images.batch(1, 0, &batches[0]).unwrap();
        assert_ne!(
            next_epoch.inputs, first[0].inputs,
            "another epoch, other augmentations"
        );
    }

    #[test]
    fn without_augments_a_batch_is_the_test_transform() {
        let images = demo_train(Vec::new());
        let batch = images.batch(0, 0, &[5]).unwrap();
        let expected = images.size.load(&images.paths[5]).unwrap();
        assert_eq!(batch.inputs, expected);
    }

    #[test]
    fn an_unreadable_image_stops_the_epoch_and_is_named() {
        let mut images = demo_train(Vec::new());
        images.paths[6] = PathBuf::from("/nonexistent/image.jpg");
        let batches = vec![vec![0, 1], vec![6, 7], vec![8, 9]];
        let mut steps = 0;
        let error = images
            .run_epoch(0, &batches, |_| {
                steps += 1;
                ControlFlow::<()>::Continue(())
            })
            .unwrap_err();
        assert_eq!(steps, 1);
        assert!(
            error.to_string().contains("/nonexistent/image.jpg"),
            "{error}"
        );
    }
}
