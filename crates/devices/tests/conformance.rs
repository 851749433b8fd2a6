//! Every command the centre can send is what `MQTT.md` documents: the
//! examples are parsed out of the document; each command the brain can
//! decide (every `zhilu_core::Command` shape, each carriageway, each
//! fail-safe mode) is encoded as the adapter encodes it and must match an
//! example of its kind — the same keys (optional ones may be left out), the
//! same JSON types, enumerated values the document names — and every
//! example must be read by the adapter's own decoder and written back
//! unchanged.

use serde_json::Value;
use zhilu_core::event::BANNABLE_CLASSES;
use zhilu_core::{Command, EntryState, FogLightMode};
use zhilu_devices::{DeviceCommand, DeviceState, Failsafe, KINDS, StateMessage};
use zhilu_road::Direction;

fn doc() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/MQTT.md")).unwrap()
}

/// The ```json blocks of the document.
fn json_blocks(doc: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find("```json\n") {
        let body = &rest[i + 8..];
        let end = body.find("```").expect("closed block");
        out.push(
            serde_json::from_str(&body[..end])
                .unwrap_or_else(|e| panic!("MQTT.md block is not JSON ({e}): {}", &body[..end])),
        );
        rest = &body[end + 3..];
    }
    out
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `got` fits `doc`: every key of `got` is in `doc` with the same JSON type
/// (recursively; array elements by the first element of the document's).
fn fits(got: &Value, doc: &Value) -> Result<(), String> {
    match (got, doc) {
        (Value::Object(g), Value::Object(d)) => {
            for (k, v) in g {
                let dv = d
                    .get(k)
                    .ok_or_else(|| format!("key `{k}` not in the document"))?;
                fits(v, dv).map_err(|e| format!("{k}: {e}"))?;
            }
            Ok(())
        }
        (Value::Array(g), Value::Array(d)) => match d.first() {
            Some(d0) => g.iter().try_for_each(|x| fits(x, d0)),
            None => Ok(()),
        },
        (g, d) if type_of(g) == type_of(d) => Ok(()),
        (g, d) => Err(format!("{g} is a {}, the document has {d}", type_of(g))),
    }
}

/// String values in `v` (enumerations) that the document must name in backticks.
fn named_values(v: &Value, key: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(o) => o.iter().for_each(|(k, x)| named_values(x, k, out)),
        Value::Array(a) => a.iter().for_each(|x| named_values(x, key, out)),
        Value::String(s) if matches!(key, "kind" | "mode" | "state" | "direction" | "banned") => {
            out.push((key.to_string(), s.clone()))
        }
        _ => {}
    }
}

/// Every command the brain can decide, with the carriageways it may name.
fn brain_commands() -> Vec<(Command, Option<Direction>)> {
    let mut cmds: Vec<Command> = Vec::new();
    cmds.extend((2..=12).map(|v| Command::SpeedLimit(Some(v * 10))));
    cmds.push(Command::SpeedLimit(None));
    for t in [
        "前方浓雾 限速40",
        "前方拥堵3公里 注意减速",
        "谨慎驾驶 注意安全",
        "",
    ] {
        cmds.push(Command::Message(t.into()));
    }
    cmds.extend(FogLightMode::ALL.into_iter().map(Command::FogLights));
    for state in EntryState::ALL {
        for n in 0..=BANNABLE_CLASSES.len() {
            cmds.push(Command::Entry {
                state,
                banned: BANNABLE_CLASSES[..n].to_vec(),
            });
        }
    }
    cmds.extend([Command::Deicing(true), Command::Deicing(false)]);
    cmds.extend([
        Command::TunnelPlan(Some("fire".into())),
        Command::TunnelPlan(None),
    ]);
    let mut out = Vec::new();
    for c in cmds {
        let dirs: &[Option<Direction>] = match c {
            Command::Entry { .. } => &[None, Some(Direction::Up), Some(Direction::Down)],
            _ => &[None],
        };
        for d in dirs {
            out.push((c.clone(), *d));
        }
    }
    out
}

#[test]
fn every_command_the_centre_can_send_matches_the_document() {
    let doc = doc();
    let blocks = json_blocks(&doc);
    let examples: Vec<&Value> = blocks.iter().filter(|b| b.get("kind").is_some()).collect();
    // Every documented kind has an example, and nothing else is documented.
    for k in KINDS {
        assert!(
            examples.iter().any(|e| e["kind"] == k),
            "no example of kind `{k}` in MQTT.md"
        );
    }
    for e in &examples {
        let k = e["kind"].as_str().unwrap();
        assert!(KINDS.contains(&k), "MQTT.md documents unknown kind `{k}`");
        // The adapter reads every example and writes it back unchanged.
        let c: DeviceCommand = serde_json::from_value((*e).clone())
            .unwrap_or_else(|err| panic!("example not read by the adapter ({err}): {e}"));
        assert_eq!(serde_json::to_value(&c).unwrap(), **e, "round trip of {e}");
    }
    let mut checked = 0;
    for (command, direction) in brain_commands() {
        let state = DeviceState::from_command(&command, direction);
        let failsafes = [
            Failsafe::Hold,
            Failsafe::Blank { after_s: 120 },
            Failsafe::Fallback {
                after_s: 1800,
                state: state.clone(),
            },
        ];
        for failsafe in failsafes {
            let c = DeviceCommand {
                command_id: 42,
                device: "S012U".into(),
                state: state.clone(),
                issued_ms: 1_700_000_000_000,
                expires_ms: 1_700_000_120_000,
                failsafe: failsafe.clone(),
            };
            let wire: Value = serde_json::from_str(&c.to_json_string()).unwrap();
            let kind = wire["kind"].as_str().unwrap();
            // The command itself: some example of its kind fits it.
            let mut command_only = wire.clone();
            command_only.as_object_mut().unwrap().remove("failsafe");
            let errors: Vec<String> = examples
                .iter()
                .filter(|e| e["kind"] == kind)
                .map(|e| {
                    let mut ex = (*e).clone();
                    ex.as_object_mut().unwrap().remove("failsafe");
                    let keys = |v: &Value| {
                        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                        k.sort();
                        k
                    };
                    if keys(&command_only) != keys(&ex) {
                        return Err(format!("keys {:?} vs {:?}", keys(&command_only), keys(&ex)));
                    }
                    fits(&command_only, &ex)
                })
                .filter_map(Result::err)
                .collect();
            let n = examples.iter().filter(|e| e["kind"] == kind).count();
            assert!(
                errors.len() < n,
                "{command:?} ({direction:?}) as sent, {wire}, fits no example of `{kind}`: {errors:?}"
            );
            // The fail-safe: some documented fail-safe of the same mode fits it,
            // and a fallback state is a state of the command's kind.
            let mode = &wire["failsafe"]["mode"];
            let doc_fs: Vec<&Value> = blocks
                .iter()
                .filter_map(|b| b.get("failsafe"))
                .filter(|f| f["mode"] == *mode)
                .collect();
            assert!(!doc_fs.is_empty(), "fail-safe mode {mode} not documented");
            let mut fs = wire["failsafe"].clone();
            let fs_state = fs.as_object_mut().unwrap().remove("state");
            assert!(
                doc_fs.iter().any(|d| {
                    let mut d = (*d).clone();
                    d.as_object_mut().unwrap().remove("state");
                    d.as_object()
                        .unwrap()
                        .keys()
                        .eq(fs.as_object().unwrap().keys())
                        && fits(&fs, &d).is_ok()
                }),
                "fail-safe {} fits no documented one",
                wire["failsafe"]
            );
            if let Some(s) = fs_state {
                assert_eq!(s, wire["payload"], "fallback state shape");
            }
            // Enumerated values are the ones the document names.
            let mut named = Vec::new();
            named_values(&wire, "", &mut named);
            for (k, v) in named {
                assert!(
                    doc.contains(&format!("`{v}`")),
                    "{k} `{v}` not named in MQTT.md"
                );
            }
            // And the device side reads what the centre sends.
            let back: DeviceCommand = serde_json::from_value(wire).unwrap();
            assert_eq!(back, c);
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn the_documented_state_message_is_read() {
    let blocks = json_blocks(&doc());
    let msgs: Vec<&Value> = blocks
        .iter()
        .filter(|b| b.get("state").is_some() && b.get("kind").is_none())
        .collect();
    assert!(!msgs.is_empty());
    for m in msgs {
        let s: StateMessage = serde_json::from_value(m.clone()).unwrap();
        assert_eq!(s.state.to_json(), m["state"]);
    }
}
