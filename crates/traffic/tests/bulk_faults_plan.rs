//! Fault planning terminates for every corridor size and keeps its promise:
//! no two faulty stations side by side, at most half the stations faulty.
//! (`gen-day --stations 10` once drew forever.)

use std::collections::HashSet;

use zhilu_traffic::bulk::{Day, DayConfig};

#[test]
fn every_station_count_from_1_to_200_plans_its_faults() {
    for stations in 1..=200u32 {
        for seed in [1u64, 7, 42, 2026] {
            let cfg = DayConfig {
                stations,
                seed,
                faults: true,
                ..DayConfig::default()
            };
            let day = Day::new(cfg).expect("valid config");
            let used: HashSet<u32> = day.faults.iter().map(|f| f.station).collect();
            assert_eq!(
                used.len(),
                day.faults.len(),
                "{stations}/{seed}: a station twice"
            );
            assert!(
                used.len() as u32 <= stations / 2,
                "{stations}/{seed}: too many"
            );
            for &s in &used {
                assert!(s < stations);
                assert!(
                    !used.contains(&(s + 1)),
                    "{stations}/{seed}: {s} and {} both faulty",
                    s + 1
                );
            }
            if stations >= 10 {
                assert!(
                    day.faults.len() >= 3,
                    "{stations}/{seed}: only {} faults",
                    day.faults.len()
                );
            }
        }
    }
}
