pub mod distributions;
pub mod releases;
