//! A file's detections as a timeline: an SVG with one lane per tag, its segments drawn as bars
//! shaded by their highest probability, and a labelled time axis.
//!
//! Readable at any length: the plot is [`PLOT_WIDTH`] pixels wide, and segments of a tag that
//! would touch or fall within one pixel of each other are drawn as one bar (its shade the
//! highest probability among them), so a lane never holds more than `PLOT_WIDTH / 2` bars
//! however many segments the file has (a 24 h file can have tens of thousands). Every bar
//! carries its times and probability as `data-*` attributes and a `<title>` tooltip.

use std::fmt::Write as _;

use cochl_core::detections::TagDetection;

/// Width of the time axis, in pixels.
pub const PLOT_WIDTH: f64 = 960.0;
/// Left column holding the tag names.
pub const LABEL_WIDTH: f64 = 170.0;
/// Height of one lane.
pub const LANE_HEIGHT: f64 = 26.0;
/// Height of a bar inside its lane.
pub const BAR_HEIGHT: f64 = 18.0;
/// Space above the first lane (the title).
pub const TOP: f64 = 40.0;
/// Space below the last lane (the axis and its labels).
pub const AXIS_HEIGHT: f64 = 36.0;
/// Right margin, so the last axis label is not cut.
const RIGHT: f64 = 30.0;
/// Tick spacings the axis chooses from, in seconds.
const STEPS: [f64; 19] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
    10800.0, 21600.0, 43200.0, 86400.0,
];
/// At most this many intervals on the axis.
const MAX_TICKS: f64 = 10.0;

/// One bar of a lane: a segment, or segments closer than a pixel drawn together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Highest probability among the segments drawn.
    pub max_probability: f64,
    /// Segments drawn as this bar.
    pub segments: usize,
}

/// The bars of one tag at a scale of `seconds_per_pixel`: segments (in time order) whose gap
/// is under a pixel join the bar before them.
pub fn bars(tag: &TagDetection, seconds_per_pixel: f64) -> Vec<Bar> {
    let mut bars: Vec<Bar> = Vec::new();
    for segment in &tag.segments {
        match bars.last_mut() {
            Some(bar) if segment.start - bar.end < seconds_per_pixel => {
                bar.end = bar.end.max(segment.end);
                bar.max_probability = bar.max_probability.max(segment.max_probability);
                bar.segments += 1;
            }
            _ => bars.push(Bar {
                start: segment.start,
                end: segment.end,
                max_probability: segment.max_probability,
                segments: 1,
            }),
        }
    }
    bars
}

/// The axis' tick spacing for a duration: the smallest of [`STEPS`] giving at most
/// [`MAX_TICKS`] intervals.
pub fn tick_step(duration: f64) -> f64 {
    STEPS
        .iter()
        .copied()
        .find(|step| duration / step <= MAX_TICKS)
        .unwrap_or_else(|| (duration / MAX_TICKS).ceil())
}

/// A time for the axis: `12 s`, `1:05`, `2:00:00`.
pub fn format_time(seconds: f64) -> String {
    if seconds < 60.0 {
        let text = format!("{seconds:.1}");
        return format!("{} s", text.trim_end_matches(".0"));
    }
    let whole = seconds.round() as u64;
    let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Escapes text for XML content and attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Characters XML 1.0 does not allow at all are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// The x coordinate of a time.
fn x_of(seconds: f64, duration: f64) -> f64 {
    LABEL_WIDTH + seconds / duration * PLOT_WIDTH
}

/// Draws the timeline of `file` (its `length_sec` if known) with `tags` (sorted as given).
pub fn render(file: &str, length_sec: Option<f64>, tags: &[TagDetection]) -> String {
    let last_end = tags
        .iter()
        .flat_map(|t| t.segments.iter().map(|s| s.end))
        .fold(0.0_f64, f64::max);
    let duration = length_sec
        .filter(|l| l.is_finite() && *l > 0.0)
        .unwrap_or(0.0)
        .max(last_end)
        .max(1.0);
    let lanes = tags.len().max(1) as f64;
    let width = LABEL_WIDTH + PLOT_WIDTH + RIGHT;
    let height = TOP + lanes * LANE_HEIGHT + AXIS_HEIGHT;
    let seconds_per_pixel = duration / PLOT_WIDTH;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<title>{}</title><text class="title" x="{LABEL_WIDTH}" y="20" font-size="14">{} ({})</text>"#,
        escape(file),
        escape(file),
        format_time(duration)
    );
    if tags.is_empty() {
        let _ = write!(
            svg,
            r##"<text class="empty" x="{}" y="{}" fill="#666">no detections</text>"##,
            LABEL_WIDTH + 8.0,
            TOP + LANE_HEIGHT / 2.0 + 4.0
        );
    }
    for (index, tag) in tags.iter().enumerate() {
        let top = TOP + index as f64 * LANE_HEIGHT;
        let name = escape(&tag.name);
        let _ = write!(svg, r#"<g class="lane" data-tag="{name}">"#);
        let shade = if index % 2 == 0 { "#f4f4f4" } else { "#ffffff" };
        let _ = write!(
            svg,
            r#"<rect class="lane-background" x="{LABEL_WIDTH}" y="{top}" width="{PLOT_WIDTH}" height="{LANE_HEIGHT}" fill="{shade}"/>"#
        );
        let _ = write!(
            svg,
            r#"<text class="label" x="{}" y="{}" text-anchor="end">{name}</text>"#,
            LABEL_WIDTH - 8.0,
            top + LANE_HEIGHT / 2.0 + 4.0
        );
        let bar_top = top + (LANE_HEIGHT - BAR_HEIGHT) / 2.0;
        for bar in bars(tag, seconds_per_pixel) {
            let x = x_of(bar.start, duration);
            let bar_width = (x_of(bar.end, duration) - x).max(1.0);
            let opacity = 0.2 + 0.8 * bar.max_probability.clamp(0.0, 1.0);
            let _ = write!(
                svg,
                r##"<rect class="segment" x="{x:.2}" y="{bar_top}" width="{bar_width:.2}" height="{BAR_HEIGHT}" fill="#1f5fbf" fill-opacity="{opacity:.3}" data-start="{}" data-end="{}" data-max-probability="{}" data-segments="{}"><title>{name} {}–{} max {:.2}</title></rect>"##,
                bar.start,
                bar.end,
                bar.max_probability,
                bar.segments,
                format_time(bar.start),
                format_time(bar.end),
                bar.max_probability
            );
        }
        svg.push_str("</g>");
    }
    let axis_y = TOP + lanes * LANE_HEIGHT;
    let _ = write!(
        svg,
        r##"<g class="axis"><line x1="{LABEL_WIDTH}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#333"/>"##,
        LABEL_WIDTH + PLOT_WIDTH
    );
    let step = tick_step(duration);
    let mut tick = 0.0;
    while tick <= duration + 1e-9 {
        let x = x_of(tick, duration);
        let _ = write!(
            svg,
            r##"<line class="tick" x1="{x:.2}" y1="{axis_y}" x2="{x:.2}" y2="{}" stroke="#333"/><text class="tick-label" x="{x:.2}" y="{}" text-anchor="middle" data-seconds="{tick}">{}</text>"##,
            axis_y + 5.0,
            axis_y + 18.0,
            format_time(tick)
        );
        tick += step;
    }
    svg.push_str("</g></svg>");
    svg
}
