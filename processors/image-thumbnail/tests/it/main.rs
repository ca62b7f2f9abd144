//! `image/thumbnail@1` as a host process: images in as `File` frames, thumbnails out as
//! `Output` frames, in mock and real mode, and the errors of bad inputs.

mod runs;
