//! Multipart uploads (`POST /api/v1/releases/{id}/files`, SPEC §5): a raw body goes through
//! multer exactly as axum's `Multipart` feeds it (boundary from the `Content-Type`, the body as
//! a stream of chunks), and each part's `file_name()` through `FileName::parse`, as
//! `upload_multipart` does. multer must terminate without panicking, and every name accepted
//! is a safe file name.
//!
//! Input: one byte choosing the chunk size, the `Content-Type` value up to the first newline,
//! then the body.
#![no_main]

use std::convert::Infallible;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use vypusk_fuzz::assert_safe_file_name;
use vypusk_protocol::FileName;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (content_type, body) = (&rest[..newline], &rest[newline + 1..]);
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return;
    };
    let Ok(boundary) = multer::parse_boundary(content_type) else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let chunks: Vec<Result<Bytes, Infallible>> = body
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut multipart = multer::Multipart::new(futures_util::stream::iter(chunks), boundary);
    futures_executor::block_on(async {
        // The body is finite, so multer must run out of parts; the bound catches a loop.
        for _ in 0..=body.len() + 1 {
            let mut field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) | Err(_) => return,
            };
            if let Some(name) = field.file_name().map(str::to_owned)
                && let Ok(parsed) = FileName::parse(&name)
            {
                assert_safe_file_name(&parsed, &name);
            }
            while let Ok(Some(_)) = field.chunk().await {}
        }
        panic!("multer yields more parts than the body has bytes");
    });
});
