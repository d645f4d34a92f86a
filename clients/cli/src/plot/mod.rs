//! `--plot`: figures drawn with plotters on a bitmap and written as PNG.
//!
//! Two figures share one layout (panels stacked over a common time axis in seconds):
//! the classify figure (waveform, log-mel spectrogram, F0 contour, per-window emotion
//! probabilities as stacked areas, with the final label and confidence in the title) and the
//! features figure (waveform, log-mel, MFCC, RMS, ZCR, spectral centroid and rolloff, F0).
//! All text is drawn with [`font`], the CLI's own bitmap font, so no system font is needed.
//! The image is encoded in memory and written only once it is complete, so a failure never
//! leaves a partial file behind.

pub(crate) mod canvas;
pub(crate) mod font;

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, bail};
use plotters::style::RGBColor;
use prosodia_dsp::config::FeatureConfig;
use prosodia_dsp::pipeline::Analysis;
use prosodia_dsp::spectral::hz_to_mel;
use prosodia_dsp::{Matrix, praat::Pitch};

use canvas::{Align, Canvas, INK, Panel, YLabels};

/// Figure size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PlotSize {
    /// Width in pixels.
    pub(crate) width: u32,
    /// Height in pixels.
    pub(crate) height: u32,
}

impl PlotSize {
    /// The smallest figure whose panels still have room for their axes and text.
    const MIN: (u32, u32) = (480, 360);
    /// The largest figure accepted (about 200 MB of RGB pixels at most).
    const MAX: (u32, u32) = (8192, 8192);
}

impl Default for PlotSize {
    fn default() -> Self {
        Self { width: 1600, height: 1200 }
    }
}

impl FromStr for PlotSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (w, h) = s
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("{s:?}: expected WIDTHxHEIGHT in pixels, e.g. 1600x1200"))?;
        let (w, h): (u32, u32) = match (w.trim().parse(), h.trim().parse()) {
            (Ok(w), Ok(h)) => (w, h),
            _ => return Err(format!("{s:?}: expected WIDTHxHEIGHT in pixels, e.g. 1600x1200")),
        };
        let (min, max) = (Self::MIN, Self::MAX);
        if !(min.0..=max.0).contains(&w) || !(min.1..=max.1).contains(&h) {
            return Err(format!(
                "{s:?}: the width must be {}..={} and the height {}..={} pixels",
                min.0, max.0, min.1, max.1
            ));
        }
        Ok(Self { width: w, height: h })
    }
}

/// One window of the emotion timeline: its span and the probability of each label (in the
/// order of [`ClassifyFigure::labels`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowScores {
    /// Start of the window in seconds.
    pub(crate) start: f64,
    /// End of the window in seconds.
    pub(crate) end: f64,
    /// Probability per label.
    pub(crate) probabilities: Vec<f32>,
}

/// Everything the classify figure shows.
pub(crate) struct ClassifyFigure<'a> {
    /// The file's name, for the title.
    pub(crate) name: String,
    /// A second title line (model, feature configuration, windowing).
    pub(crate) subtitle: String,
    /// The analysis of the whole (untrimmed) file with the model's front end.
    pub(crate) analysis: &'a Analysis,
    /// That front end.
    pub(crate) config: &'a FeatureConfig,
    /// The model's labels, in output order.
    pub(crate) labels: Vec<String>,
    /// The windows of the emotion timeline.
    pub(crate) windows: Vec<WindowScores>,
    /// The final label (unary Classify).
    pub(crate) label: String,
    /// Its probability.
    pub(crate) confidence: f32,
}

/// Everything the features figure shows.
pub(crate) struct FeaturesFigure<'a> {
    /// The file's name, for the title.
    pub(crate) name: String,
    /// The analysis whose features are drawn.
    pub(crate) analysis: &'a Analysis,
    /// The front end that produced it.
    pub(crate) config: &'a FeatureConfig,
}

/// The colour of an emotion label: the six classes of the default model (and a few other
/// common ones) keep their colour across figures; other labels take the next free colour.
pub(crate) fn label_color(label: &str, index: usize) -> RGBColor {
    match label {
        "angry" | "anger" => RGBColor(214, 39, 40),
        "disgust" => RGBColor(107, 142, 35),
        "fear" | "fearful" => RGBColor(148, 103, 189),
        "happy" | "happiness" => RGBColor(255, 165, 0),
        "neutral" => RGBColor(150, 150, 150),
        "sad" | "sadness" => RGBColor(31, 119, 180),
        "calm" => RGBColor(23, 190, 207),
        "surprise" | "surprised" | "ps" => RGBColor(227, 119, 194),
        _ => {
            const OTHERS: [RGBColor; 4] = [
                RGBColor(140, 86, 75),
                RGBColor(188, 189, 34),
                RGBColor(0, 0, 128),
                RGBColor(255, 105, 97),
            ];
            OTHERS[index % OTHERS.len()]
        }
    }
}

const WAVE: RGBColor = RGBColor(31, 119, 180);
const LINE: RGBColor = RGBColor(214, 39, 40);
const LINE2: RGBColor = RGBColor(44, 160, 44);

/// How the figure is cut up: the title block, then panels of the given relative heights.
struct Layout {
    panels: Vec<Panel>,
}

fn layout(c: &Canvas<'_>, title_height: i32, weights: &[u32], duration: f64) -> Layout {
    let s = c.scale as i32;
    let (w, h) = (c.size.0 as i32, c.size.1 as i32);
    let left = (9 * font::ADVANCE) as i32 * s + 10 * s;
    let right = 14 * s;
    let bottom = 2 * c.line_height(c.scale) + 12 * s;
    let per_panel = c.line_height(c.scale) + 2 * s;
    let gap = 10 * s;
    let n = weights.len() as i32;
    let free = (h - title_height - bottom - n * per_panel - (n - 1) * gap).max(n);
    let total: u32 = weights.iter().sum::<u32>().max(1);
    let mut y = title_height;
    let mut panels = Vec::new();
    for wgt in weights {
        let ph = (i64::from(free) * i64::from(*wgt) / i64::from(total)).max(1) as i32;
        y += per_panel;
        panels.push(Panel {
            x: left,
            y,
            w: (w - left - right).max(1),
            h: ph,
            xr: (0.0, duration.max(1e-3)),
            yr: (0.0, 1.0),
        });
        y += ph + gap;
    }
    Layout { panels }
}

/// Draws the title block (a title at a larger scale and a subtitle); returns its height.
fn titles(c: &Canvas<'_>, title: &str, subtitle: &str) -> anyhow::Result<i32> {
    let s = c.scale as i32;
    let mut y = 6 * s;
    let centre = c.size.0 as i32 / 2;
    let room = c.size.0 as i32 - 4 * s;
    let title = canvas::fit(title, c.scale + 1, room);
    c.text(centre, y, &title, c.scale + 1, Align::Center, INK)?;
    y += c.line_height(c.scale + 1);
    c.text(centre, y, &canvas::fit(subtitle, c.scale, room), c.scale, Align::Center, INK)?;
    y += c.line_height(c.scale) + 2 * s;
    Ok(y)
}

/// The "Time (s)" label under the last panel.
fn time_label(c: &Canvas<'_>, last: &Panel) -> anyhow::Result<()> {
    let y = last.y + last.h + 6 * c.scale as i32 + c.line_height(c.scale);
    c.text(last.x + last.w / 2, y, "Time (s)", c.scale, Align::Center, INK)
}

fn duration(a: &Analysis) -> f64 {
    a.signal.len() as f64 / f64::from(a.sample_rate.max(1))
}

/// Seconds between STFT frames, frame k being centred on sample k·hop (librosa's
/// `center=True`).
fn frame_step(a: &Analysis, config: &FeatureConfig) -> f64 {
    config.stft.hop_length as f64 / f64::from(a.sample_rate.max(1))
}

fn waveform_panel(
    c: &Canvas<'_>,
    p: &mut Panel,
    a: &Analysis,
    x_labels: bool,
) -> anyhow::Result<()> {
    let peak = a.signal.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let m = f64::from(peak).max(1e-6) * 1.05;
    p.yr = (-m, m);
    canvas::axes(c, p, "Waveform (amplitude)", &YLabels::Plain, x_labels, 0)?;
    canvas::waveform(c, p, &a.signal, a.sample_rate, WAVE)?;
    canvas::frame(c, p)
}

fn logmel_panel(
    c: &Canvas<'_>,
    p: &mut Panel,
    a: &Analysis,
    config: &FeatureConfig,
    x_labels: bool,
) -> anyhow::Result<()> {
    let m = &a.spectral.logmel_db;
    let fmin = f64::from(config.mel.fmin_hz);
    let fmax = config.mel.fmax_hz.map_or(f64::from(a.sample_rate) / 2.0, f64::from);
    let (lo, hi) = (hz_to_mel(fmin), hz_to_mel(fmax));
    p.yr = (lo, hi);
    // Tick labels in Hz at round frequencies, placed on the mel axis; ticks that would
    // overlap the one below are dropped.
    let mut labels: Vec<(f64, String)> = Vec::new();
    let min_gap = f64::from(font::text_height(c.scale) + 2 * c.scale);
    for hz in [0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0] {
        if hz < fmin || hz > fmax {
            continue;
        }
        let y = hz_to_mel(hz);
        let far_enough =
            labels.last().is_none_or(|(prev, _)| f64::from(p.py(*prev) - p.py(y)) >= min_gap);
        if far_enough {
            let text = if hz >= 1000.0 { format!("{}k", hz / 1000.0) } else { format!("{hz}") };
            labels.push((y, text));
        }
    }
    let title = format!("Mel spectrogram ({} bands, dB; axis in Hz)", m.cols);
    canvas::axes(c, p, &title, &YLabels::Fixed(labels), x_labels, 0)?;
    if m.rows == 0 || m.cols == 0 {
        canvas::note(c, p, "no frames")?;
        return canvas::frame(c, p);
    }
    let (vmin, vmax) = finite_range(&m.data);
    let step_mel = (hi - lo) / (m.cols + 1) as f64;
    let hop = frame_step(a, config);
    canvas::heatmap(c, p, vmin, vmax, |t, mel| {
        let frame = nearest_index(t / hop, m.rows);
        let band = nearest_index((mel - lo) / step_mel - 1.0, m.cols);
        Some(f64::from(m.data[frame * m.cols + band]))
    })?;
    canvas::frame(c, p)
}

fn mfcc_panel(
    c: &Canvas<'_>,
    p: &mut Panel,
    a: &Analysis,
    config: &FeatureConfig,
    x_labels: bool,
) -> anyhow::Result<()> {
    let m: &Matrix = &a.spectral.mfcc;
    p.yr = (-0.5, m.cols as f64 - 0.5);
    let title = format!("MFCC 0-{} (each coefficient on its own colour scale)", m.cols.max(1) - 1);
    canvas::axes(c, p, &title, &YLabels::Plain, x_labels, 0)?;
    if m.rows == 0 || m.cols == 0 {
        canvas::note(c, p, "no frames")?;
        return canvas::frame(c, p);
    }
    // c0 (loudness) spans hundreds while the others span tens: one shared scale would
    // flatten every coefficient but c0.
    let ranges: Vec<(f64, f64)> = (0..m.cols).map(|k| finite_range(&m.column(k))).collect();
    let hop = frame_step(a, config);
    canvas::heatmap(c, p, 0.0, 1.0, |t, y| {
        let frame = nearest_index(t / hop, m.rows);
        let k = nearest_index(y, m.cols);
        let (lo, hi) = ranges[k];
        let v = f64::from(m.data[frame * m.cols + k]);
        Some(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
    })?;
    canvas::frame(c, p)
}

/// A panel of per-frame lines on the STFT grid.
fn frame_lines_panel(
    c: &Canvas<'_>,
    p: &mut Panel,
    title: &str,
    step: f64,
    series: &[(&str, &[f32], RGBColor)],
    x_labels: bool,
) -> anyhow::Result<()> {
    let all: Vec<f32> = series.iter().flat_map(|(_, v, _)| v.iter().copied()).collect();
    let (lo, hi) = finite_range(&all);
    let lo = lo.min(0.0);
    let hi = if hi > lo { hi * 1.08 } else { lo + 1.0 };
    p.yr = (lo, hi);
    let entries: Vec<(String, RGBColor)> =
        series.iter().map(|(name, _, color)| ((*name).to_string(), *color)).collect();
    let reserve = if series.len() > 1 { c.legend_width(&entries) } else { 0 };
    canvas::axes(c, p, title, &YLabels::Plain, x_labels, reserve)?;
    for (_, values, color) in series {
        let points: Vec<(f64, f64)> =
            values.iter().enumerate().map(|(k, v)| (k as f64 * step, f64::from(*v))).collect();
        canvas::line_series(c, p, &points, *color)?;
    }
    if series.len() > 1 {
        c.legend(p.x + p.w, p.y - c.line_height(c.scale), &entries)?;
    }
    canvas::frame(c, p)
}

fn f0_panel(c: &Canvas<'_>, p: &mut Panel, pitch: &Pitch, x_labels: bool) -> anyhow::Result<()> {
    let voiced = pitch.f0_hz.iter().copied().filter(|f| *f > 0.0 && f.is_finite());
    let top = voiced.clone().fold(0.0f64, f64::max);
    let count = voiced.count();
    p.yr = (0.0, if top > 0.0 { (top * 1.15).max(100.0) } else { pitch.ceiling_hz.max(100.0) });
    let title = format!("F0 (Hz; Praat autocorrelation, {count} of {} frames voiced)", pitch.len());
    canvas::axes(c, p, &title, &YLabels::Plain, x_labels, 0)?;
    let points: Vec<(f64, f64)> = pitch
        .f0_hz
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let t = pitch.first_frame_time + i as f64 * pitch.time_step;
            (t, if *f > 0.0 { *f } else { f64::NAN })
        })
        .collect();
    if count == 0 {
        canvas::note(c, p, "no voiced frames")?;
    } else {
        canvas::line_series(c, p, &points, LINE)?;
    }
    canvas::frame(c, p)
}

fn timeline_panel(
    c: &Canvas<'_>,
    p: &mut Panel,
    fig: &ClassifyFigure<'_>,
    x_labels: bool,
) -> anyhow::Result<()> {
    p.yr = (0.0, 1.0);
    let title =
        format!("Emotion probabilities per window ({} windows, stacked)", fig.windows.len());
    let colors: Vec<RGBColor> =
        fig.labels.iter().enumerate().map(|(i, l)| label_color(l, i)).collect();
    let entries: Vec<(String, RGBColor)> =
        fig.labels.iter().cloned().zip(colors.iter().copied()).collect();
    canvas::axes(c, p, &title, &YLabels::Plain, x_labels, c.legend_width(&entries))?;
    c.legend(p.x + p.w, p.y - c.line_height(c.scale), &entries)?;
    let mut windows = fig.windows.clone();
    windows.sort_by(|a, b| a.start.total_cmp(&b.start));
    let (Some(first), Some(last)) = (windows.first(), windows.last()) else {
        canvas::note(c, p, "no window results (every window was silent or too short)")?;
        return canvas::frame(c, p);
    };
    // Each window is drawn at its centre; the first and last are held flat out to their
    // outer edges so the timeline covers every second some window saw.
    let mut xs = vec![first.start];
    let mut rows: Vec<&WindowScores> = vec![first];
    for w in &windows {
        xs.push((w.start + w.end) / 2.0);
        rows.push(w);
    }
    xs.push(last.end);
    rows.push(last);
    let layers: Vec<(Vec<f64>, RGBColor)> = colors
        .iter()
        .enumerate()
        .map(|(k, color)| {
            let values = rows
                .iter()
                .map(|w| w.probabilities.get(k).map_or(0.0, |v| f64::from(*v)))
                .collect();
            (values, *color)
        })
        .collect();
    canvas::stacked_areas(c, p, &xs, &layers)?;
    canvas::frame(c, p)
}

/// Renders the classify figure as PNG bytes.
pub(crate) fn classify_png(fig: &ClassifyFigure<'_>, size: PlotSize) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (size.width, size.height);
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let c = Canvas::new(&mut buf, (w, h))?;
        let title =
            format!("{}: {} ({:.1}%)", fig.name, fig.label, f64::from(fig.confidence) * 100.0);
        let top = titles(&c, &title, &fig.subtitle)?;
        let a = fig.analysis;
        let mut l = layout(&c, top, &[2, 3, 2, 3], duration(a)).panels;
        let [wave, mel, f0, timeline] = &mut l[..] else { bail!("figure layout") };
        waveform_panel(&c, wave, a, false)?;
        logmel_panel(&c, mel, a, fig.config, false)?;
        f0_panel(&c, f0, &a.voice.pitch, false)?;
        timeline_panel(&c, timeline, fig, true)?;
        time_label(&c, timeline)?;
        c.root.present().map_err(canvas::drawing_error)?;
    }
    encode_png(&buf, size)
}

/// Renders the features figure as PNG bytes.
pub(crate) fn features_png(fig: &FeaturesFigure<'_>, size: PlotSize) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (size.width, size.height);
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let c = Canvas::new(&mut buf, (w, h))?;
        let a = fig.analysis;
        let title = format!("{}: features", fig.name);
        let subtitle = format!(
            "configuration '{}': {} Hz, {:.2} s analysed, n_fft {}, hop {}",
            fig.config.name,
            a.sample_rate,
            duration(a),
            fig.config.stft.n_fft,
            fig.config.stft.hop_length
        );
        let top = titles(&c, &title, &subtitle)?;
        let mut l = layout(&c, top, &[4, 6, 4, 3, 3, 3, 3], duration(a)).panels;
        let [wave, mel, mfcc, rms, zcr, spec, f0] = &mut l[..] else { bail!("figure layout") };
        let step = frame_step(a, fig.config);
        let s = &a.spectral;
        waveform_panel(&c, wave, a, false)?;
        logmel_panel(&c, mel, a, fig.config, false)?;
        mfcc_panel(&c, mfcc, a, fig.config, false)?;
        frame_lines_panel(&c, rms, "RMS energy", step, &[("rms", &s.rms, WAVE)], false)?;
        frame_lines_panel(&c, zcr, "Zero-crossing rate", step, &[("zcr", &s.zcr, WAVE)], false)?;
        frame_lines_panel(
            &c,
            spec,
            "Spectral centroid and rolloff (Hz)",
            step,
            &[("centroid", &s.centroid, LINE2), ("rolloff", &s.rolloff, LINE)],
            false,
        )?;
        f0_panel(&c, f0, &a.voice.pitch, true)?;
        time_label(&c, f0)?;
        c.root.present().map_err(canvas::drawing_error)?;
    }
    encode_png(&buf, size)
}

fn encode_png(rgb: &[u8], size: PlotSize) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size.width, size.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("encoding the PNG")?;
    writer.write_image_data(rgb).context("encoding the PNG")?;
    writer.finish().context("encoding the PNG")?;
    Ok(out)
}

/// Writes a finished PNG to `path`.
pub(crate) fn write_png(path: &Path, png: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, png).with_context(|| format!("writing the plot to {}", path.display()))
}

/// The file-name part of a path, for titles.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into())
}

/// Index nearest to `x` in `0..len` (clamped; `len` must be positive).
fn nearest_index(x: f64, len: usize) -> usize {
    if x.is_finite() { (x.round().max(0.0) as usize).min(len - 1) } else { 0 }
}

/// Smallest and largest finite value (0, 1 when there is none).
fn finite_range(values: &[f32]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(f64::from(*v)), hi.max(f64::from(*v)))
        });
    if lo <= hi { (lo, hi) } else { (0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_out_of_range_sizes_are_refused() {
        assert_eq!("800x600".parse(), Ok(PlotSize { width: 800, height: 600 }));
        assert_eq!("1600X1200".parse(), Ok(PlotSize::default()));
        for bad in ["800", "x600", "800x", "axb", "100x100", "800x0", "99999x600", "-800x600"] {
            assert!(bad.parse::<PlotSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn helpers_clamp_and_skip_non_finite_values() {
        assert_eq!(nearest_index(-3.0, 5), 0);
        assert_eq!(nearest_index(3.6, 5), 4);
        assert_eq!(nearest_index(99.0, 5), 4);
        assert_eq!(nearest_index(f64::NAN, 5), 0);
        assert_eq!(finite_range(&[f32::NAN, 2.0, -1.0, f32::INFINITY]), (-1.0, 2.0));
        assert_eq!(finite_range(&[]), (0.0, 1.0));
    }

    #[test]
    fn the_six_emotions_get_six_distinct_colours() {
        let labels = ["angry", "disgust", "fear", "happy", "neutral", "sad"];
        let colors: std::collections::HashSet<(u8, u8, u8)> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let c = label_color(l, i);
                (c.0, c.1, c.2)
            })
            .collect();
        assert_eq!(colors.len(), 6);
    }
}
