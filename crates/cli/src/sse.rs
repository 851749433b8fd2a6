//! A reader for the server's live stream (Server-Sent Events), for the
//! command-line clients (`demo`, `loadgen`).

/// Splits a byte stream into `(event, data)` messages. Bytes are buffered
/// until a whole line is there, so a character split across chunks (the
/// Chinese VMS texts) arrives intact.
#[derive(Default)]
pub struct SseReader {
    buf: Vec<u8>,
    kind: String,
}

impl SseReader {
    /// Feeds one chunk; appends each complete `data:` line with the event
    /// name that preceded it.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<(String, String)>) {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(i) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.buf[start..start + i]);
            let line = line.trim_end_matches('\r');
            if let Some(k) = line.strip_prefix("event:") {
                self.kind = k.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                out.push((self.kind.clone(), d.trim().to_string()));
            }
            start += i + 1;
        }
        self.buf.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_any_chunking() {
        let text = "event: hello\ndata: {}\n\nevent: device\ndata: {\"text\":\"前方团雾\"}\r\n\n";
        let bytes = text.as_bytes();
        for cut in 1..bytes.len() {
            let mut r = SseReader::default();
            let mut out = Vec::new();
            r.push(&bytes[..cut], &mut out);
            r.push(&bytes[cut..], &mut out);
            assert_eq!(
                out,
                vec![
                    ("hello".to_string(), "{}".to_string()),
                    ("device".to_string(), "{\"text\":\"前方团雾\"}".to_string())
                ],
                "cut at {cut}"
            );
        }
    }
}
