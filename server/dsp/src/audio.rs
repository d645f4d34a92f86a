//! The decoded-audio buffer every stage passes along.

/// Decoded audio: planar channels of f32 samples in [-1, 1] at one sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second, per channel (never zero).
    pub sample_rate: u32,
    /// One vector per channel, all of equal length.
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// A mono buffer.
    pub fn mono(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self { sample_rate, channels: vec![samples] }
    }

    /// Samples per channel.
    pub fn num_frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Length in seconds.
    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.num_frames() as f64 / f64::from(self.sample_rate)
        }
    }
}
