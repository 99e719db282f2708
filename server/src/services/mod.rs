pub mod releases;
