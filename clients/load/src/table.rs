//! Human-readable tables of reports (the JSON is the record; these are for the terminal).

use std::fmt::Write;

use crate::{StreamReport, UnaryReport};

const UNARY_HEAD: [&str; 11] = [
    "mode", "conc", "chan", "requests", "errors", "late", "req/s", "p50 ms", "p90 ms", "p99 ms",
    "max ms",
];
const STREAM_HEAD: [&str; 9] =
    ["streams", "chan", "held", "errors", "p50 ms", "p99 ms", "max ms", "windows", "late chunks"];

/// One line per unary run, with the server's median split when it sent one.
pub fn unary_table(reports: &[UnaryReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>6} {:>5} {:>4} {:>8} {:>6} {:>5} {:>9} {:>8} {:>8} {:>8} {:>8}  server p50 queue/decode/extract/infer ms",
        UNARY_HEAD[0],
        UNARY_HEAD[1],
        UNARY_HEAD[2],
        UNARY_HEAD[3],
        UNARY_HEAD[4],
        UNARY_HEAD[5],
        UNARY_HEAD[6],
        UNARY_HEAD[7],
        UNARY_HEAD[8],
        UNARY_HEAD[9],
        UNARY_HEAD[10]
    );
    for r in reports {
        let split = r.server_ms.map_or_else(
            || "-".to_owned(),
            |m| {
                format!(
                    "{:.2}/{:.2}/{:.2}/{:.2}",
                    m.queue.p50, m.decode.p50, m.extract.p50, m.infer.p50
                )
            },
        );
        let _ = writeln!(
            s,
            "{:>6} {:>5} {:>4} {:>8} {:>6} {:>5} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {split}",
            r.mode,
            r.concurrency,
            r.channels,
            r.requests,
            r.error_count(),
            r.late,
            r.throughput_rps,
            r.latency_ms.p50,
            r.latency_ms.p90,
            r.latency_ms.p99,
            r.latency_ms.max,
        );
        if let Some(e) = &r.first_error {
            let _ = writeln!(s, "       first error: {e}");
        }
    }
    s
}

/// One line per streaming run.
pub fn stream_table(reports: &[StreamReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>7} {:>5} {:>8} {:>7} {:>8} {:>8} {:>8} {:>11} {:>10}",
        STREAM_HEAD[0],
        STREAM_HEAD[1],
        STREAM_HEAD[2],
        STREAM_HEAD[3],
        STREAM_HEAD[4],
        STREAM_HEAD[5],
        STREAM_HEAD[6],
        STREAM_HEAD[7],
        STREAM_HEAD[8]
    );
    for r in reports {
        let windows = format!("{}/{}", r.windows_received, r.windows_expected);
        let _ = writeln!(
            s,
            "{:>7} {:>5} {:>8} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>11} {:>10}",
            r.streams,
            r.channels,
            r.streams_under_threshold,
            r.errors.values().sum::<u64>(),
            r.interim_latency_ms.p50,
            r.interim_latency_ms.p99,
            r.interim_latency_ms.max,
            windows,
            r.late_chunks,
        );
        if let Some(e) = &r.first_error {
            let _ = writeln!(s, "        first error: {e}");
        }
    }
    s
}
