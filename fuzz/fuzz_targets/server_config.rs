//! Any text as the server's configuration file: a configuration or an
//! error naming file, line and key, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = zhilu_server::config::ServerConfig::parse(text, "zhilu.toml") {
            let _ = e.to_string();
        }
    }
});
