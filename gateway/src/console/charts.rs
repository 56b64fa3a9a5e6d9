//! Scorecard charts as inline SVG, drawn on the server: horizontal bars,
//! one row per department (or record type), no script and no chart
//! library — two bar charts do not need one.

use std::fmt::Write as _;

use xgate_proto::v1::Scorecard;

/// One row of a chart.
pub struct Bar {
    pub label: String,
    pub called: u64,
    /// 0..=1.
    pub availability: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Bar {
    pub fn of(label: &str, card: &Scorecard) -> Bar {
        Bar {
            label: label.to_owned(),
            called: card.called,
            availability: card.availability.clamp(0.0, 1.0),
            p50_ms: card.p50_ms.max(0.0),
            p99_ms: card.p99_ms.max(0.0),
        }
    }
}

const WIDTH: f64 = 720.0;
const LABEL: f64 = 210.0;
const VALUE: f64 = 110.0;
const ROW: f64 = 22.0;
const TOP: f64 = 8.0;

fn escape(text: &str) -> String {
    minijinja::HtmlEscape(text).to_string()
}

fn frame(title: &str, rows: usize, body: &str) -> String {
    let height = TOP * 2.0 + ROW * rows.max(1) as f64;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\"><title>{t}</title>{body}</svg>",
        t = escape(title)
    )
}

fn label(out: &mut String, y: f64, text: &str) {
    let _ = write!(
        out,
        "<text x=\"{x}\" y=\"{y:.1}\" text-anchor=\"end\" class=\"label\">{}</text>",
        escape(text),
        x = LABEL - 8.0,
        y = y + ROW * 0.68
    );
}

/// Answered / called per row: green at 99 % and above, amber from 95 %,
/// red below; grey when never called.
pub fn availability(bars: &[Bar]) -> String {
    let span = WIDTH - LABEL - VALUE;
    let mut body = String::new();
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        label(&mut body, y, &bar.label);
        let (class, text) = match bar.called {
            0 => ("idle", "not called".to_owned()),
            _ if bar.availability >= 0.99 => ("good", format!("{:.1} %", bar.availability * 100.0)),
            _ if bar.availability >= 0.95 => ("fair", format!("{:.1} %", bar.availability * 100.0)),
            _ => ("poor", format!("{:.1} %", bar.availability * 100.0)),
        };
        let w = if bar.called == 0 {
            span
        } else {
            span * bar.availability
        };
        let _ = write!(
            body,
            "<rect x=\"{LABEL}\" y=\"{y1:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" class=\"{class}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" class=\"value\">{text}</text>",
            y1 = y + 3.0,
            h = ROW - 6.0,
            tx = LABEL + span + 6.0,
            ty = y + ROW * 0.68,
        );
    }
    frame("Availability: answered of called", bars.len(), &body)
}

/// p50 (dark) inside p99 (light) per row, on one scale: the slowest p99.
pub fn latency(bars: &[Bar]) -> String {
    let span = WIDTH - LABEL - VALUE;
    let max = bars.iter().map(|b| b.p99_ms).fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { span / max } else { 0.0 };
    let mut body = String::new();
    for (i, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        label(&mut body, y, &bar.label);
        let _ = write!(
            body,
            "<rect x=\"{LABEL}\" y=\"{y1:.1}\" width=\"{w99:.1}\" height=\"{h:.1}\" class=\"p99\"/>\
             <rect x=\"{LABEL}\" y=\"{y1:.1}\" width=\"{w50:.1}\" height=\"{h:.1}\" class=\"p50\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" class=\"value\">{p50:.1} / {p99:.1} ms</text>",
            y1 = y + 3.0,
            h = ROW - 6.0,
            w99 = bar.p99_ms * scale,
            w50 = bar.p50_ms * scale,
            tx = LABEL + span + 6.0,
            ty = y + ROW * 0.68,
            p50 = bar.p50_ms,
            p99 = bar.p99_ms,
        );
    }
    frame("Latency: p50 / p99 in milliseconds", bars.len(), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, called: u64, availability: f64, p50: f64, p99: f64) -> Bar {
        Bar {
            label: label.into(),
            called,
            availability,
            p50_ms: p50,
            p99_ms: p99,
        }
    }

    #[test]
    fn bars_are_scaled_classed_and_labels_escaped() {
        let bars = [
            bar("tax", 100, 1.0, 2.0, 10.0),
            bar("<script>", 100, 0.9, 1.0, 5.0),
            bar("idle", 0, 1.0, 0.0, 0.0),
        ];
        let a = availability(&bars);
        assert!(a.starts_with("<svg") && a.ends_with("</svg>"));
        assert!(
            a.contains("class=\"good\"")
                && a.contains("class=\"poor\"")
                && a.contains("not called")
        );
        assert!(a.contains("&lt;script&gt;") && !a.contains("<script>"));
        let l = latency(&bars);
        // The slowest p99 spans the whole bar area (720 - 210 - 110).
        assert!(
            l.contains("width=\"400.0\" height=\"16.0\" class=\"p99\""),
            "{l}"
        );
        assert!(l.contains("2.0 / 10.0 ms"));
    }
}
