//! Audio files made on the fly for tests and the bench, so no test depends on a shipped
//! recording for the exact signal it needs.

/// A 16-bit mono PCM WAV file of `samples` (each in [-1, 1], clamped) at `rate` Hz.
pub fn wav_s16_mono(rate: u32, samples: &[f64]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&36u32.saturating_add(data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        let value = (sample.clamp(-1.0, 1.0) * f64::from(i16::MAX)) as i16;
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// A sine tone of `frequency` Hz at half scale, as a 16-bit mono WAV file (the emulator's
/// rule tags it `Tone`).
pub fn tone_wav(frequency: f64, rate: u32, seconds: f64) -> Vec<u8> {
    let count = (f64::from(rate) * seconds) as usize;
    let samples: Vec<f64> = (0..count)
        .map(|i| 0.5 * (std::f64::consts::TAU * frequency * i as f64 / f64::from(rate)).sin())
        .collect();
    wav_s16_mono(rate, &samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes_and_samples_are_little_endian_pcm() {
        let wav = wav_s16_mono(8_000, &[0.0, 1.0, -2.0]);
        assert_eq!(wav.len(), 44 + 6);
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([wav[4], wav[5], wav[6], wav[7]]), 36 + 6);
        assert_eq!(
            u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
            8_000
        );
        assert_eq!(u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]), 6);
        assert_eq!(i16::from_le_bytes([wav[46], wav[47]]), i16::MAX);
        assert_eq!(i16::from_le_bytes([wav[48], wav[49]]), -i16::MAX);
    }
}
