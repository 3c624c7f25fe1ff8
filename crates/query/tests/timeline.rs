//! The timeline SVG read back as XML: one lane per tag, bars exactly where the segments are
//! (positions worked out here from the drawing's geometry), a labelled axis, and a 24 h file
//! drawn with a few dozen elements, not one per window.

use cochl_core::detections::{Segment, TagDetection};
use cochl_query::timeline::{
    bars, format_time, render, tick_step, Bar as Drawn, LABEL_WIDTH, PLOT_WIDTH,
};

fn segment(start: f64, end: f64, p: f64) -> Segment {
    Segment {
        start,
        end,
        max_probability: p,
        mean_probability: p,
        windows: 1,
    }
}

fn tag(name: &str, segments: Vec<Segment>) -> TagDetection {
    TagDetection {
        name: name.into(),
        max_probability: segments
            .iter()
            .map(|s| s.max_probability)
            .fold(0.0, f64::max),
        detected_seconds: 0.0,
        windows: segments.len() as u32,
        segments,
    }
}

fn number(node: &roxmltree::Node, name: &str) -> f64 {
    node.attribute(name)
        .unwrap_or_else(|| panic!("{name} on {node:?}"))
        .parse()
        .expect("a number")
}

/// `(x, width, opacity)` of a bar.
type Bar = (f64, f64, f64);

/// The bars of each lane, by tag.
fn lanes(svg: &str) -> Vec<(String, Vec<Bar>)> {
    let document = roxmltree::Document::parse(svg).expect("valid XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    root.children()
        .filter(|n| n.attribute("class") == Some("lane"))
        .map(|lane| {
            let bars = lane
                .children()
                .filter(|n| n.attribute("class") == Some("segment"))
                .map(|bar| {
                    (
                        number(&bar, "x"),
                        number(&bar, "width"),
                        number(&bar, "fill-opacity"),
                    )
                })
                .collect();
            (lane.attribute("data-tag").expect("a tag").to_string(), bars)
        })
        .collect()
}

/// The axis labels, in order.
fn tick_labels(svg: &str) -> Vec<String> {
    let document = roxmltree::Document::parse(svg).expect("valid XML");
    document
        .descendants()
        .filter(|n| n.attribute("class") == Some("tick-label"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

#[test]
fn a_ten_second_file_has_a_lane_per_tag_and_bars_where_the_segments_are() {
    let svg = render(
        "s3://audio/incoming/street.wav",
        Some(10.0),
        &[
            tag(
                "Siren",
                vec![segment(0.0, 3.0, 0.8), segment(4.0, 6.0, 0.9)],
            ),
            tag("Dog_bark", vec![segment(6.0, 8.0, 0.5)]),
        ],
    );
    let drawn = lanes(&svg);
    let names: Vec<&str> = drawn.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Siren", "Dog_bark"]);
    // 10 s over 960 px: 96 px a second, from x = 170. Opacity 0.2 + 0.8 p.
    let px = PLOT_WIDTH / 10.0;
    let expected = [
        vec![
            (LABEL_WIDTH, 3.0 * px, 0.2 + 0.8 * 0.8),
            (LABEL_WIDTH + 4.0 * px, 2.0 * px, 0.2 + 0.8 * 0.9),
        ],
        vec![(LABEL_WIDTH + 6.0 * px, 2.0 * px, 0.2 + 0.8 * 0.5)],
    ];
    for ((name, bars), want) in drawn.iter().zip(expected) {
        assert_eq!(bars.len(), want.len(), "{name}");
        for (bar, want) in bars.iter().zip(want) {
            assert!(
                close(bar.0, want.0) && close(bar.1, want.1) && close(bar.2, want.2),
                "{name}: {bar:?} != {want:?}"
            );
        }
    }
    // The axis: a tick a second, 0 s to 10 s, labelled.
    assert_eq!(
        tick_labels(&svg),
        ["0 s", "1 s", "2 s", "3 s", "4 s", "5 s", "6 s", "7 s", "8 s", "9 s", "10 s"]
    );
}

#[test]
fn a_day_long_file_is_drawn_at_its_scale() {
    // One tag on every other second all day (43,200 segments), one on every other hour.
    let dense = tag(
        "Speech",
        (0..43_200)
            .map(|k| segment(2.0 * k as f64, 2.0 * k as f64 + 1.0, 0.6))
            .collect(),
    );
    let hourly = tag(
        "Siren",
        (0..12)
            .map(|h| segment(7_200.0 * h as f64, 7_200.0 * h as f64 + 3_600.0, 0.9))
            .collect(),
    );
    let svg = render(
        "s3://audio/incoming/day.wav",
        Some(86_400.0),
        &[dense, hourly],
    );
    let drawn = lanes(&svg);
    // 90 s a pixel: the 1 s gaps close (one bar all day), the 1 h gaps stay (12 bars).
    assert_eq!(drawn[0].1.len(), 1, "{:?}", drawn[0].1);
    assert!(close(drawn[0].1[0].1, 86_399.0 / 86_400.0 * PLOT_WIDTH));
    assert_eq!(drawn[1].1.len(), 12);
    for (h, bar) in drawn[1].1.iter().enumerate() {
        assert!(
            close(bar.0, LABEL_WIDTH + h as f64 * 2.0 * PLOT_WIDTH / 24.0),
            "{bar:?}"
        );
        assert!(close(bar.1, PLOT_WIDTH / 24.0), "{bar:?}");
    }
    let document = roxmltree::Document::parse(&svg).expect("valid XML");
    let elements = document.descendants().filter(|n| n.is_element()).count();
    assert!(elements < 200, "{elements} elements");
    assert_eq!(
        tick_labels(&svg),
        [
            "0 s", "3:00:00", "6:00:00", "9:00:00", "12:00:00", "15:00:00", "18:00:00", "21:00:00",
            "24:00:00"
        ]
    );
}

#[test]
fn a_file_without_detections_says_so() {
    let svg = render("s3://audio/incoming/quiet.wav", Some(4.0), &[]);
    let document = roxmltree::Document::parse(&svg).expect("valid XML");
    assert!(lanes(&svg).is_empty());
    assert!(document
        .descendants()
        .any(|n| n.attribute("class") == Some("empty") && n.text() == Some("no detections")));
}

#[test]
fn segments_within_a_pixel_are_one_bar() {
    let siren = tag(
        "Siren",
        vec![
            segment(0.0, 2.0, 0.5),
            segment(2.4, 3.0, 0.9),
            segment(5.0, 6.0, 0.7),
        ],
    );
    // Half a second per pixel: the 0.4 s gap closes, the 2 s gap does not.
    let drawn = bars(&siren, 0.5);
    let one = |start, end, max_probability, segments| Drawn {
        start,
        end,
        max_probability,
        segments,
    };
    assert_eq!(drawn, vec![one(0.0, 3.0, 0.9, 2), one(5.0, 6.0, 0.7, 1)]);
    // A finer scale keeps all three apart.
    assert_eq!(bars(&siren, 0.1).len(), 3);
}

#[test]
fn the_axis_has_at_most_ten_intervals_of_a_round_length() {
    for (duration, step) in [
        (1.0, 0.5),
        (10.0, 1.0),
        (11.0, 2.0),
        (600.0, 60.0),
        (86_400.0, 10_800.0),
    ] {
        assert_eq!(tick_step(duration), step, "{duration}");
    }
    assert_eq!(format_time(0.0), "0 s");
    assert_eq!(format_time(2.5), "2.5 s");
    assert_eq!(format_time(65.0), "1:05");
    assert_eq!(format_time(7_200.0), "2:00:00");
}

#[test]
fn names_are_escaped() {
    let svg = render(
        "s3://b/a&b<c>.wav",
        Some(4.0),
        &[tag("Rock \"n\" <roll>", vec![segment(0.0, 2.0, 1.0)])],
    );
    let drawn = lanes(&svg);
    assert_eq!(drawn[0].0, "Rock \"n\" <roll>", "read back as written");
    assert!(svg.contains("a&amp;b&lt;c&gt;.wav"));
    assert!(!svg.contains("<roll>"));
}
