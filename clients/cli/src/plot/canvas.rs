//! Drawing primitives on a plotters bitmap: panels with axes, ticks and text (drawn with the
//! CLI's own bitmap font, never plotters' text, which needs system fonts), line series,
//! heatmaps and stacked areas.

use std::cell::Cell;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::font;

/// The bitmap drawing area of a whole figure.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Figure background.
pub(crate) const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
/// Text, frames and ticks.
pub(crate) const INK: RGBColor = RGBColor(20, 20, 20);
/// Grid lines.
const GRID: RGBColor = RGBColor(225, 225, 225);

/// Turns a plotters error into the CLI's error type.
pub(crate) fn drawing_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}

/// A figure being drawn: the root area and the text scale.
pub(crate) struct Canvas<'a> {
    /// The whole figure.
    pub(crate) root: Area<'a>,
    /// Integer scale of normal text (titles use one more).
    pub(crate) scale: u32,
    /// Figure width and height in pixels.
    pub(crate) size: (u32, u32),
}

/// Where text is anchored horizontally.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

impl<'a> Canvas<'a> {
    /// A canvas over `buf` (RGB, `size.0 * size.1 * 3` bytes), cleared to the background.
    pub(crate) fn new(buf: &'a mut [u8], size: (u32, u32)) -> anyhow::Result<Self> {
        let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
        root.fill(&BACKGROUND).map_err(drawing_error)?;
        // Text stays readable from small figures up to poster sizes.
        let scale = (size.0.min(size.1 * 4 / 3) / 800).max(1);
        Ok(Self { root, scale, size })
    }

    /// Draws `text` with its top edge at `y`, anchored at `x` as `align` says.
    pub(crate) fn text(
        &self,
        x: i32,
        y: i32,
        text: &str,
        scale: u32,
        align: Align,
        color: RGBColor,
    ) -> anyhow::Result<()> {
        let w = font::text_width(text, scale) as i32 - scale as i32;
        let x0 = match align {
            Align::Left => x,
            Align::Center => x - w / 2,
            Align::Right => x - w,
        };
        let failed = Cell::new(None);
        font::render(text, scale, |dx, dy| {
            if let Err(e) = self.root.draw_pixel((x0 + dx, y + dy), &color) {
                failed.set(Some(drawing_error(e)));
            }
        });
        failed.take().map_or(Ok(()), Err)
    }

    /// Height of a line of normal text including spacing below it.
    pub(crate) fn line_height(&self, scale: u32) -> i32 {
        (font::text_height(scale) + 3 * scale) as i32
    }

    /// A filled rectangle in pixel coordinates (inclusive corners).
    pub(crate) fn rect(
        &self,
        (x0, y0): (i32, i32),
        (x1, y1): (i32, i32),
        color: RGBColor,
    ) -> anyhow::Result<()> {
        self.root.draw(&Rectangle::new([(x0, y0), (x1, y1)], color.filled())).map_err(drawing_error)
    }

    /// A straight line in pixel coordinates.
    pub(crate) fn line(&self, a: (i32, i32), b: (i32, i32), color: RGBColor) -> anyhow::Result<()> {
        self.root.draw(&PathElement::new(vec![a, b], color)).map_err(drawing_error)
    }

    /// Width in pixels of [`Canvas::legend`] for `entries`.
    pub(crate) fn legend_width(&self, entries: &[(String, RGBColor)]) -> i32 {
        let s = self.scale as i32;
        let swatch = font::text_height(self.scale) as i32 - 2 * s;
        entries
            .iter()
            .map(|(name, _)| swatch + 3 * s + font::text_width(name, self.scale) as i32 + 6 * s)
            .sum()
    }

    /// A legend: a colour swatch and a name per entry, in one row ending at `right`.
    pub(crate) fn legend(
        &self,
        right: i32,
        y: i32,
        entries: &[(String, RGBColor)],
    ) -> anyhow::Result<()> {
        let s = self.scale as i32;
        let swatch = font::text_height(self.scale) as i32 - 2 * s;
        let widths: Vec<i32> = entries
            .iter()
            .map(|(name, _)| swatch + 3 * s + font::text_width(name, self.scale) as i32 + 6 * s)
            .collect();
        let mut x = right - widths.iter().sum::<i32>();
        for ((name, color), w) in entries.iter().zip(widths) {
            self.rect((x, y), (x + swatch, y + swatch), *color)?;
            self.text(x + swatch + 3 * s, y, name, self.scale, Align::Left, INK)?;
            x += w;
        }
        Ok(())
    }
}

/// One plot panel: a pixel rectangle and the data ranges it shows.
#[derive(Clone, Debug)]
pub(crate) struct Panel {
    /// Left edge of the plotting area in pixels.
    pub(crate) x: i32,
    /// Top edge of the plotting area in pixels.
    pub(crate) y: i32,
    /// Width of the plotting area in pixels.
    pub(crate) w: i32,
    /// Height of the plotting area in pixels.
    pub(crate) h: i32,
    /// Data range along x (time in seconds).
    pub(crate) xr: (f64, f64),
    /// Data range along y.
    pub(crate) yr: (f64, f64),
}

impl Panel {
    /// Pixel column of data x (unclamped).
    pub(crate) fn px(&self, v: f64) -> i32 {
        let f = (v - self.xr.0) / (self.xr.1 - self.xr.0);
        self.x + (f * f64::from(self.w - 1)).round() as i32
    }

    /// Pixel row of data y (unclamped; larger values are higher up).
    pub(crate) fn py(&self, v: f64) -> i32 {
        let f = (v - self.yr.0) / (self.yr.1 - self.yr.0);
        self.y + self.h - 1 - (f * f64::from(self.h - 1)).round() as i32
    }

    /// Data x at the centre of pixel column `i` (0-based within the panel).
    pub(crate) fn x_at(&self, i: i32) -> f64 {
        self.xr.0 + (f64::from(i) + 0.5) / f64::from(self.w) * (self.xr.1 - self.xr.0)
    }

    /// Data y at the centre of pixel row `j` (0-based from the panel's top).
    pub(crate) fn y_at(&self, j: i32) -> f64 {
        self.yr.1 - (f64::from(j) + 0.5) / f64::from(self.h) * (self.yr.1 - self.yr.0)
    }

    fn clamp_y(&self, v: f64) -> f64 {
        v.clamp(self.yr.0.min(self.yr.1), self.yr.0.max(self.yr.1))
    }
}

/// Evenly spaced "nice" tick values (steps of 1, 2 or 5 × 10^k) inside `range`, about
/// `target` of them, with the number of decimals their labels need.
pub(crate) fn ticks(range: (f64, f64), target: usize) -> (Vec<f64>, usize) {
    let (lo, hi) = (range.0.min(range.1), range.0.max(range.1));
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (vec![lo], 0);
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let values = (first..=last).map(|k| k as f64 * step).collect();
    (values, decimals)
}

/// How a panel's y tick labels are written.
pub(crate) enum YLabels {
    /// Plain numbers.
    Plain,
    /// Given (position, label) pairs instead of computed ticks.
    Fixed(Vec<(f64, String)>),
}

/// Draws a panel's title (above it, shortened to leave `reserve` pixels free at its right
/// for a legend), background grid, frame and ticks; x tick labels only when `x_labels`.
pub(crate) fn axes(
    c: &Canvas<'_>,
    p: &Panel,
    title: &str,
    y_labels: &YLabels,
    x_labels: bool,
    reserve: i32,
) -> anyhow::Result<()> {
    let s = c.scale as i32;
    let tick = 4 * s;
    let title = fit(title, c.scale, p.w - reserve);
    c.text(p.x, p.y - c.line_height(c.scale), &title, c.scale, Align::Left, INK)?;
    let (xt, xd) = ticks(p.xr, (p.w / (90 * s)).max(2) as usize);
    for t in &xt {
        let x = p.px(*t);
        c.line((x, p.y), (x, p.y + p.h - 1), GRID)?;
        c.line((x, p.y + p.h), (x, p.y + p.h + tick), INK)?;
        if x_labels {
            c.text(x, p.y + p.h + tick + 2 * s, &format!("{t:.xd$}"), c.scale, Align::Center, INK)?;
        }
    }
    let y_ticks: Vec<(f64, String)> = match y_labels {
        YLabels::Fixed(v) => v.clone(),
        YLabels::Plain => {
            let (yt, yd) = ticks(p.yr, (p.h / (14 * s)).max(3) as usize);
            yt.into_iter().map(|v| (v, format!("{v:.yd$}"))).collect()
        }
    };
    let half = font::text_height(c.scale) as i32 * 7 / 18;
    // Labels closer than a line of text to the last one drawn are left out (tick and grid
    // line too), so small panels do not pile numbers on each other.
    let min_gap = (font::text_height(c.scale) + c.scale) as i32;
    let mut last: Option<i32> = None;
    for (v, label) in &y_ticks {
        let y = p.py(*v);
        if last.is_some_and(|l| (l - y).abs() < min_gap) {
            continue;
        }
        last = Some(y);
        c.line((p.x, y), (p.x + p.w - 1, y), GRID)?;
        c.line((p.x - tick, y), (p.x - 1, y), INK)?;
        c.text(p.x - tick - 2 * s, y - half, label, c.scale, Align::Right, INK)?;
    }
    Ok(())
}

/// The panel's frame, drawn last so data does not cover it.
pub(crate) fn frame(c: &Canvas<'_>, p: &Panel) -> anyhow::Result<()> {
    c.root
        .draw(&Rectangle::new([(p.x - 1, p.y - 1), (p.x + p.w, p.y + p.h)], INK))
        .map_err(drawing_error)
}

/// `text` shortened with ".." so that it fits in `max_width` pixels at `scale`.
pub(crate) fn fit(text: &str, scale: u32, max_width: i32) -> String {
    if font::text_width(text, scale) as i32 <= max_width {
        return text.to_string();
    }
    let per_char = (font::ADVANCE * scale) as i32;
    let keep = (max_width / per_char - 2).max(0) as usize;
    let mut out: String = text.chars().take(keep).collect();
    out.push_str("..");
    out
}

/// A message centred in an empty panel.
pub(crate) fn note(c: &Canvas<'_>, p: &Panel, text: &str) -> anyhow::Result<()> {
    let y = p.y + p.h / 2 - font::text_height(c.scale) as i32 / 2;
    c.text(p.x + p.w / 2, y, text, c.scale, Align::Center, INK)
}

/// The panel's plotting area, for a chart in data coordinates.
fn plot_area<'a>(c: &Canvas<'a>, p: &Panel) -> Area<'a> {
    c.root.clone().shrink((p.x, p.y), (p.w as u32, p.h as u32))
}

/// A line through `points` (data coordinates), broken wherever y is not finite.
pub(crate) fn line_series(
    c: &Canvas<'_>,
    p: &Panel,
    points: &[(f64, f64)],
    color: RGBColor,
) -> anyhow::Result<()> {
    let area = plot_area(c, p);
    let mut chart = ChartBuilder::on(&area)
        .build_cartesian_2d(p.xr.0..p.xr.1, p.yr.0..p.yr.1)
        .map_err(drawing_error)?;
    let style = color.stroke_width(c.scale);
    for run in points.split(|(_, y)| !y.is_finite()) {
        let run: Vec<(f64, f64)> = run.iter().map(|&(x, y)| (x, p.clamp_y(y))).collect();
        match run.len() {
            0 => {}
            1 => {
                // A lone point would draw nothing as a line.
                chart
                    .draw_series(std::iter::once(Circle::new(run[0], c.scale, color.filled())))
                    .map_err(drawing_error)?;
            }
            _ => {
                chart.draw_series(LineSeries::new(run, style)).map_err(drawing_error)?;
            }
        }
    }
    Ok(())
}

/// The min–max envelope of a signal per pixel column: every sample is accounted for however
/// long the signal.
pub(crate) fn waveform(
    c: &Canvas<'_>,
    p: &Panel,
    samples: &[f32],
    rate: u32,
    color: RGBColor,
) -> anyhow::Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let per_second = f64::from(rate);
    let span = p.xr.1 - p.xr.0;
    for i in 0..p.w {
        let t0 = p.xr.0 + f64::from(i) / f64::from(p.w) * span;
        let t1 = p.xr.0 + f64::from(i + 1) / f64::from(p.w) * span;
        let a = ((t0 * per_second).floor().max(0.0) as usize).min(samples.len());
        let b = ((t1 * per_second).ceil().max(0.0) as usize).clamp(a, samples.len());
        let Some(chunk) = samples.get(a..b.max(a + 1).min(samples.len())) else { continue };
        if chunk.is_empty() {
            continue;
        }
        let (lo, hi) =
            chunk.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        let x = p.x + i;
        let (y0, y1) = (p.py(p.clamp_y(f64::from(hi))), p.py(p.clamp_y(f64::from(lo))));
        c.line((x, y0), (x, y1.max(y0)), color)?;
    }
    Ok(())
}

/// A heatmap: `value(t, y)` for each pixel of the panel, coloured by `colormap` between
/// `lo` and `hi` (`None` leaves the pixel as it is).
pub(crate) fn heatmap(
    c: &Canvas<'_>,
    p: &Panel,
    lo: f64,
    hi: f64,
    value: impl Fn(f64, f64) -> Option<f64>,
) -> anyhow::Result<()> {
    let span = if hi > lo { hi - lo } else { 1.0 };
    for i in 0..p.w {
        let t = p.x_at(i);
        for j in 0..p.h {
            if let Some(v) = value(t, p.y_at(j)) {
                let color = colormap((v - lo) / span);
                c.root.draw_pixel((p.x + i, p.y + j), &color).map_err(drawing_error)?;
            }
        }
    }
    Ok(())
}

/// Stacked areas: `layers[k]` are the (x, value) points of layer k; layer k is filled
/// between the running sum of layers 0..k and that sum plus layer k.
pub(crate) fn stacked_areas(
    c: &Canvas<'_>,
    p: &Panel,
    xs: &[f64],
    layers: &[(Vec<f64>, RGBColor)],
) -> anyhow::Result<()> {
    let area = plot_area(c, p);
    let mut chart = ChartBuilder::on(&area)
        .build_cartesian_2d(p.xr.0..p.xr.1, p.yr.0..p.yr.1)
        .map_err(drawing_error)?;
    let mut base = vec![0.0; xs.len()];
    for (values, color) in layers {
        let top: Vec<f64> = base.iter().zip(values).map(|(b, v)| b + v.max(0.0)).collect();
        let mut outline: Vec<(f64, f64)> =
            xs.iter().zip(&top).map(|(&x, &y)| (x, p.clamp_y(y))).collect();
        outline.extend(xs.iter().zip(&base).rev().map(|(&x, &y)| (x, p.clamp_y(y))));
        chart
            .draw_series(std::iter::once(Polygon::new(outline, color.filled())))
            .map_err(drawing_error)?;
        base = top;
    }
    Ok(())
}

/// Our perceptually ordered colour scale (dark blue-violet → teal → green → yellow), for
/// `f` in [0, 1] (clamped).
pub(crate) fn colormap(f: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let f = if f.is_finite() { f.clamp(0.0, 1.0) } else { 0.0 };
    let pos = f * (STOPS.len() - 1) as f64;
    let k = (pos.floor() as usize).min(STOPS.len() - 2);
    let u = pos - k as f64;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice_and_inside_the_range() {
        let (t, d) = ticks((0.0, 2.3), 5);
        assert_eq!(t, vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(d, 1);
        let (t, d) = ticks((-1.0, 1.0), 4);
        assert_eq!(t, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(d, 1);
        let (t, d) = ticks((0.0, 480.0), 4);
        assert_eq!(t, vec![0.0, 200.0, 400.0]);
        assert_eq!(d, 0);
        assert_eq!(ticks((1.0, 1.0), 4).0, vec![1.0]);
    }

    #[test]
    fn fit_shortens_only_text_that_is_too_wide() {
        assert_eq!(fit("abc", 1, 18), "abc");
        let long = "x".repeat(50);
        let short = fit(&long, 2, 120);
        assert!(font::text_width(&short, 2) <= 120, "{short}");
        assert!(short.ends_with(".."));
    }

    #[test]
    fn colormap_runs_from_dark_to_light() {
        let lum =
            |c: RGBColor| 0.3 * f64::from(c.0) + 0.59 * f64::from(c.1) + 0.11 * f64::from(c.2);
        let mut last = -1.0;
        for k in 0..=20 {
            let l = lum(colormap(f64::from(k) / 20.0));
            assert!(l > last, "step {k}");
            last = l;
        }
        assert_eq!(colormap(f64::NAN), colormap(0.0));
        assert_eq!(colormap(7.0), colormap(1.0));
    }

    #[test]
    fn panel_maps_its_range_onto_its_pixels() {
        let p = Panel { x: 10, y: 20, w: 101, h: 51, xr: (0.0, 2.0), yr: (-1.0, 1.0) };
        assert_eq!((p.px(0.0), p.px(2.0), p.px(1.0)), (10, 110, 60));
        assert_eq!((p.py(1.0), p.py(-1.0), p.py(0.0)), (20, 70, 45));
    }
}
