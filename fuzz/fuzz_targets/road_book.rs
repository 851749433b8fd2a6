//! Any text as ROAD.toml: an error or a book, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(book) = zhilu_road::RoadBook::from_toml(text, "ROAD.toml") {
            // Exercise the lookups on whatever validated.
            for d in zhilu_road::Direction::ALL {
                let _ = book.upstream(d, book.geometry().start_m(), 1e6, &[zhilu_road::DeviceKind::Vsl]);
            }
            let (lon, lat) = book.geometry().lonlat(book.geometry().end_m());
            let _ = book.geometry().locate(lon, lat);
        }
    }
});
