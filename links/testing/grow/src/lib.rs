//! Test fixture: allocates (and touches) memory in 1 MiB steps without bound. It must
//! be stopped by its memory cap.

use conserver_link_sdk::prelude::*;

/// The grow fixture.
pub struct Grow;

impl Link for Grow {
    fn process(_ctx: &Context, _vcon: Vcon) -> LinkResult {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export_link!(Grow);
