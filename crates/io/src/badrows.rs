//! Bad-row accounting: every rejected or distrusted row is counted by kind,
//! with the first few places (line and column) kept for the report.

use std::fmt;

pub use zhilu_contract::BadRowKind;

/// How many first places are kept per kind.
pub const KEEP_FIRST: usize = 5;

/// One place a bad row was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Line in the file (1-based; the header is line 1).
    pub line: u64,
    /// Column name, when one field is at fault.
    pub column: Option<&'static str>,
}

/// Bad rows of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRows {
    /// File name, for the report.
    pub file: String,
    counts: [u64; 12],
    first: [[Option<Place>; KEEP_FIRST]; 12],
}

impl BadRows {
    /// Empty log for a file.
    pub fn new(file: impl Into<String>) -> BadRows {
        BadRows {
            file: file.into(),
            counts: [0; 12],
            first: [[None; KEEP_FIRST]; 12],
        }
    }

    /// Counts one bad row.
    pub fn add(&mut self, kind: BadRowKind, line: u64, column: Option<&'static str>) {
        let k = kind as usize;
        let n = self.counts[k] as usize;
        if n < KEEP_FIRST {
            self.first[k][n] = Some(Place { line, column });
        }
        self.counts[k] += 1;
    }

    /// Rows of one kind.
    pub fn count(&self, kind: BadRowKind) -> u64 {
        self.counts[kind as usize]
    }

    /// All bad rows.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The first places of one kind.
    pub fn first(&self, kind: BadRowKind) -> impl Iterator<Item = Place> + '_ {
        self.first[kind as usize].iter().flatten().copied()
    }
}

impl fmt::Display for BadRows {
    /// `OBS.csv: 3 bad rows — out_of_range 2 (line 7 occupancy_pct, line 9 speed_kmh), unknown_device 1 (line 4 detector)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} bad rows", self.file, self.total())?;
        let mut sep = " — ";
        for kind in BadRowKind::ALL {
            let n = self.count(kind);
            if n == 0 {
                continue;
            }
            write!(f, "{sep}{} {n} (", kind.as_str())?;
            for (i, p) in self.first(kind).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "line {}", p.line)?;
                if let Some(c) = p.column {
                    write!(f, " {c}")?;
                }
            }
            if n > KEEP_FIRST as u64 {
                f.write_str(", …")?;
            }
            f.write_str(")")?;
            sep = "; ";
        }
        Ok(())
    }
}
