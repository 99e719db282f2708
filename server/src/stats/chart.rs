//! Server-rendered SVG charts: axes, tick labels, grid, value labels, `<title>` tooltips.
//! No script, no external resource; text is escaped and rendered with the page's font, so
//! Cyrillic labels work.

use std::fmt::Write;

/// Escapes text for XML/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `1234567` → `1 234 567` (thin spaces keep it on one line).
pub fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(ch);
    }
    out
}

/// Bytes as B, KiB, MiB, GiB with one decimal.
pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A "nice" tick step (1, 2 or 5 × 10^k) so that about `ticks` steps cover `max`.
pub fn nice_step(max: i64, ticks: i64) -> i64 {
    if max <= 0 {
        return 1;
    }
    let raw = (max as f64 / ticks as f64).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(1.0) as i64
}

/// The axis top: the smallest multiple of the step ≥ max (at least one step).
fn axis_max(max: i64, step: i64) -> i64 {
    ((max + step - 1) / step).max(1) * step
}

const W: f64 = 1000.0;
const FONT: &str = "font-family=\"system-ui, 'DejaVu Sans', Arial, sans-serif\" font-size=\"12\"";

/// A line chart of one series over labelled points (e.g. days).
pub fn line_chart(id: &str, title: &str, points: &[(String, i64)]) -> String {
    let h = 300.0;
    let (left, right, top, bottom) = (64.0, 44.0, 28.0, 56.0);
    let plot_w = W - left - right;
    let plot_h = h - top - bottom;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let step = nice_step(max, 5);
    let top_value = axis_max(max, step);
    let total: i64 = points.iter().map(|p| p.1).sum();
    let x = |i: usize| {
        if points.len() <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |v: i64| top + plot_h - plot_h * v as f64 / top_value as f64;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{}\" data-total=\"{total}\" \
         data-points=\"{}\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" \
         aria-label=\"{}\" {FONT}>",
        esc(id),
        points.len(),
        esc(title)
    );
    let _ = write!(
        s,
        "<title>{}</title><text x=\"{left}\" y=\"16\" font-weight=\"bold\">{}</text>",
        esc(title),
        esc(title)
    );
    // Y grid and tick labels.
    let mut v = 0;
    while v <= top_value {
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}</text>",
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            group_digits(v)
        );
        v += step;
    }
    // Axes.
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\" stroke=\"#333\"/>\
         <line x1=\"{left}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#333\"/>",
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    // X labels: at most ~8, always the first and the last.
    let every = points.len().div_ceil(8).max(1);
    for (i, (label, _)) in points.iter().enumerate() {
        let last = points.len() - 1;
        // Periodic labels stop short of the last one, so the two never overlap.
        if i == last || (i.is_multiple_of(every) && last - i >= every.div_ceil(2)) {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#333\"/>\
                 <text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\" fill=\"#444\">{4}</text>",
                x(i),
                top + plot_h,
                top + plot_h + 5.0,
                top + plot_h + 20.0,
                esc(label)
            );
        }
    }
    if !points.is_empty() {
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.1)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for (i, (label, value)) in points.iter().enumerate() {
            let _ = write!(
                s,
                "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f6feb\" \
                 data-label=\"{}\" data-value=\"{value}\"><title>{}: {}</title></circle>",
                x(i),
                y(*value),
                esc(label),
                esc(label),
                group_digits(*value)
            );
        }
        // The peak gets its number written out.
        if let Some((i, (_, value))) = points.iter().enumerate().max_by_key(|(_, p)| p.1)
            && *value > 0
        {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1f6feb\">{}</text>",
                x(i),
                y(*value) - 8.0,
                group_digits(*value)
            );
        }
    } else {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">—</text>",
            left + plot_w / 2.0,
            top + plot_h / 2.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">UTC day</text></svg>",
        left + plot_w / 2.0,
        h - 8.0
    );
    s
}

/// A horizontal bar chart: label, bar, value; one row per bar.
pub fn bar_chart(id: &str, title: &str, bars: &[(String, i64)]) -> String {
    let row = 26.0;
    let (label_w, value_w, top, bottom) = (260.0, 110.0, 30.0, 30.0);
    let plot_w = W - label_w - value_w;
    let h = top + bottom + row * bars.len().max(1) as f64;
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0);
    let step = nice_step(max, 4);
    let top_value = axis_max(max, step);
    let total: i64 = bars.iter().map(|b| b.1).sum();
    let x = |v: i64| label_w + plot_w * v as f64 / top_value as f64;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{}\" data-total=\"{total}\" \
         data-bars=\"{}\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" \
         aria-label=\"{}\" {FONT}>",
        esc(id),
        bars.len(),
        esc(title)
    );
    let _ = write!(
        s,
        "<title>{}</title><text x=\"8\" y=\"16\" font-weight=\"bold\">{}</text>",
        esc(title),
        esc(title)
    );
    let axis_y = top + row * bars.len().max(1) as f64;
    let mut v = 0;
    while v <= top_value {
        let xx = x(v);
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{top}\" y2=\"{axis_y}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
            axis_y + 16.0,
            group_digits(v)
        );
        v += step;
    }
    let _ = write!(
        s,
        "<line x1=\"{label_w}\" x2=\"{label_w}\" y1=\"{top}\" y2=\"{axis_y}\" stroke=\"#333\"/>\
         <line x1=\"{label_w}\" x2=\"{}\" y1=\"{axis_y}\" y2=\"{axis_y}\" stroke=\"#333\"/>",
        label_w + plot_w
    );
    if bars.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">—</text>",
            label_w + plot_w / 2.0,
            top + row / 2.0 + 4.0
        );
    }
    for (i, (label, value)) in bars.iter().enumerate() {
        let yy = top + row * i as f64;
        let shown: String = if label.chars().count() > 32 {
            label.chars().take(31).chain(['…']).collect()
        } else {
            label.clone()
        };
        let width = (x(*value) - label_w).max(if *value > 0 { 1.0 } else { 0.0 });
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#222\">{}</text>\
             <rect class=\"bar\" x=\"{label_w}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" \
             fill=\"#2da44e\" data-label=\"{}\" data-value=\"{value}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#222\">{}</text>",
            label_w - 8.0,
            yy + row / 2.0 + 4.0,
            esc(&shown),
            yy + 4.0,
            row - 8.0,
            esc(label),
            esc(label),
            group_digits(*value),
            label_w + width + 6.0,
            yy + row / 2.0 + 4.0,
            group_digits(*value)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(group_digits(-1000), "-1\u{202f}000");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(nice_step(0, 5), 1);
        assert_eq!(nice_step(7, 5), 2);
        assert_eq!(nice_step(100, 5), 20);
        assert_eq!(nice_step(1234, 5), 500);
        assert_eq!(axis_max(1234, 500), 1500);
    }

    #[test]
    fn charts_escape_labels_and_carry_values() {
        let svg = bar_chart(
            "c",
            "Загрузки <по> релизам",
            &[("УТ & КА".into(), 5), ("4.0.4.11".into(), 0)],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Загрузки &lt;по&gt; релизам"));
        assert!(svg.contains("data-label=\"УТ &amp; КА\" data-value=\"5\""));
        assert!(svg.contains("data-total=\"5\""));
        let svg = line_chart(
            "l",
            "Per day",
            &[("2026-11-21".into(), 0), ("2026-11-22".into(), 3)],
        );
        assert_eq!(svg.matches("class=\"point\"").count(), 2);
        assert!(svg.contains("<polyline"));
        let empty = line_chart("e", "Per day", &[]);
        assert!(
            empty.contains(">—</text>"),
            "an empty chart says so without words"
        );
    }
}
