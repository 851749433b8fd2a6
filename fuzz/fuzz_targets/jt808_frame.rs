//! Any bytes as a JT/T 808 TCP stream: frames, typed errors or replies,
//! never a panic; reassembly stays within its bounds; a decoded message that
//! encodes again decodes to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use zhilu_jt808::wire::{Framer, to_hex};
use zhilu_jt808::{Decoder, Message, Reassembler, ReassemblyConfig, error_reply, frame_to_json};

fn check_reencode(msg: &Message) {
    let mut packets = Vec::new();
    if msg.encode_packets(1023, &mut packets).is_err() {
        return;
    }
    if let Ok(wire) = msg.to_bytes() {
        let again = Decoder::new().decode(&wire).expect("an encoded message decodes");
        assert_eq!(&again, msg, "decode(encode(m)) != m");
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks how the stream is cut into reads.
    let (chunk, stream) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c % 64) + 1, rest),
        None => return,
    };
    let cfg = ReassemblyConfig { max_pending: 4, max_pending_bytes: 64 * 1024, ..Default::default() };
    let mut framer = Framer::new(2048);
    let mut dec = Decoder::new();
    let mut re = Reassembler::new(cfg);
    for (t, c) in stream.chunks(chunk).enumerate() {
        framer.push(c);
        assert!(framer.buffered() <= 2048 + 64);
        while let Some(seg) = framer.next_frame() {
            let Ok(seg) = seg else { continue };
            let seg = seg.to_vec();
            match dec.frame(&seg) {
                Ok(f) => {
                    if f.header.package.is_none() {
                        if let Ok(body) = f.decode_body() {
                            check_reencode(&Message { header: f.header, body });
                        }
                    }
                    if let Ok(Some(done)) = re.push(&f, t as u64 * 1000) {
                        if let Ok(m) = done.decode() {
                            check_reencode(&m);
                        }
                    }
                    assert!(re.pending_bytes() <= cfg.max_pending_bytes);
                    assert!(re.pending() <= cfg.max_pending);
                }
                Err(_) => {
                    if let Some(reply) = error_reply(&seg, 1) {
                        reply.to_bytes().expect("error replies encode");
                    }
                }
            }
        }
    }
    if stream.len() <= 512 {
        let _ = frame_to_json(&to_hex(stream));
    }
});
