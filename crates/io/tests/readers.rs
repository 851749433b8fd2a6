use zhilu_io::*;
use zhilu_road::RoadBook;

const ROAD: &str = r#"
[road]
id = "T1"
name = "test"
tz = "+08:00"
directions = ["up", "down"]
geometry = [[0, 116.32, 39.85], [25000, 116.20, 39.64]]
lanes = 3
speed_limit_kmh = 120

[[detector]]
id = "D1"
direction = "up"
stake_m = 12000
lanes = 3

[[weather]]
id = "W1"
stake_m = 12500
"#;

fn probe(csv: &str) {
    let road = RoadBook::from_toml(ROAD, "ROAD.toml").unwrap();
    match ObsReader::new(csv.as_bytes(), "OBS.csv", &road) {
        Err(e) => println!("{csv:?}: ERR {e}"),
        Ok(mut r) => {
            let mut out = vec![];
            loop {
                match r.next() {
                    Ok(Some(row)) => out.push((row.line, row.value.valid)),
                    Ok(None) => break,
                    Err(e) => {
                        println!("err {e}");
                        break;
                    }
                }
            }
            println!("{csv:?}: rows={} {:?} bad: {}", r.rows(), out, r.bad());
        }
    }
}

#[test]
fn probe_all() {
    let h = "time,detector,lane,interval_s,volume,speed_kmh,occupancy_pct";
    let r = "2026-11-23T06:00:20+08:00,D1,1,20,3,80,5";
    probe(&format!("{h}\n{r}\n{r}\n"));
    probe(&format!("{h}\n{r}\n\n\n{r}\n"));
    probe(&format!("{h}\n\n{r}\n"));
    probe(&format!("{h}\r\n{r}\r\n{r}\r\n\r\n{r}\r\n"));
    probe(&format!("{h}\r{r}\r{r}\r"));
    probe(&format!("\u{feff}{h}\n{r}\n"));
    probe(&format!(
        "\u{feff}\"time\",detector,lane,interval_s,volume,speed_kmh,occupancy_pct\n{r}\n"
    ));
    probe("");
    probe("\n\n");
    probe(&format!("{h}\n\"\"\n{r}\n \n{r}\n"));
    probe(&format!("{h}\n{r},\"a\nb\"\n{r}\n"));
    probe(&format!(
        "{h}\n2026-11-23T06:00:20+08:00,D1,1,20,3,\"8\"0,5\n\"abc\n"
    ));
}
