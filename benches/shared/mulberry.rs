//! The benchmark's event generator's random numbers, shared by the native
//! benches so they see bench/lib's data.

/// mulberry32, as the JS generator (same numbers for the same seed).
pub struct Rng(pub u32);

impl Rng {
    /// The next number in [0, 1).
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x6d2b79f5);
        let s = self.0;
        let mut t = (s ^ (s >> 15)).wrapping_mul(s | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        f64::from(t ^ (t >> 14)) / 4_294_967_296.0
    }
}
