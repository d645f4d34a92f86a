//! `--plot` end to end: the real binary draws fixtures to PNG; the images are decoded and
//! checked for their size, their panels (found by their frames) and what is in each.
//! `classify --plot` runs against a real server on 127.0.0.1:0 serving an in-test model with
//! fixed probabilities (angry 0.1, calm 0.7, sad 0.2), so the emotion timeline's areas have
//! known proportions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use prosodia_server::repository::ModelManifest;
use prosodia_server::runner::{Backend, Batch, ModelRunner, RunnerError, TensorInfo};
use prosodia_server::{Config, ServerBuilder};

const WHITE: [u8; 3] = [255, 255, 255];
/// The colour of text, frames and ticks.
const INK: [u8; 3] = [20, 20, 20];
const GRID: [u8; 3] = [225, 225, 225];
/// The timeline colours of the test model's labels.
const ANGRY: [u8; 3] = [214, 39, 40];
const CALM: [u8; 3] = [23, 190, 207];
const SAD: [u8; 3] = [31, 119, 180];

fn shared() -> PathBuf {
    std::env::var_os("PROSODIA_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// The fixture, or `None` (after saying why) when the shared fixtures are absent.
fn fixture(rel: &str) -> Option<PathBuf> {
    let p = shared().join("fixtures").join(rel);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("skipping: fixture {} not found (set PROSODIA_SHARED)", p.display());
        None
    }
}

fn prosodia(args: &[&str]) -> (i32, String, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_prosodia")).args(args).output().expect("run prosodia");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

/// A decoded RGB image.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Self {
        let file = std::io::BufReader::new(std::fs::File::open(path).expect("open the PNG"));
        let mut reader = png::Decoder::new(file).read_info().expect("a valid PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut buf).expect("PNG image data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        Self { width: info.width as usize, height: info.height as usize, rgb: buf }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Rows where a frame line runs across the middle 60 % of the width: each panel's frame
    /// gives two (its top and bottom edge), nothing else draws long runs of ink.
    fn frame_rows(&self) -> Vec<usize> {
        let (a, b) = (self.width / 5, self.width * 4 / 5);
        (0..self.height)
            .filter(|&y| (a..b).filter(|&x| self.at(x, y) == INK).count() * 10 >= (b - a) * 9)
            .collect()
    }

    /// The inside of each panel (between consecutive frame rows), as (top, bottom) rows.
    fn panels(&self) -> Vec<(usize, usize)> {
        let rows = self.frame_rows();
        assert!(rows.len().is_multiple_of(2), "frame edges come in pairs: {rows:?}");
        rows.chunks(2).map(|p| (p[0] + 1, p[1])).collect()
    }

    /// Pixels in rows `top..bottom` and columns of the middle 60 % of the width.
    fn region(&self, (top, bottom): (usize, usize)) -> Vec<[u8; 3]> {
        let (a, b) = (self.width / 5, self.width * 4 / 5);
        (top..bottom)
            .flat_map(|y| (a..b).map(move |x| (x, y)))
            .map(|(x, y)| self.at(x, y))
            .collect()
    }
}

/// Data pixels: neither background, grid nor ink.
fn data_pixels(region: &[[u8; 3]]) -> Vec<[u8; 3]> {
    region.iter().copied().filter(|c| ![WHITE, GRID, INK].contains(c)).collect()
}

fn distinct(pixels: &[[u8; 3]]) -> usize {
    pixels.iter().collect::<HashSet<_>>().len()
}

/// Checks the common shape of a figure: size, panel count, no blank panel, text above the
/// first panel; returns the image and its panels.
fn check_figure(path: &Path, size: (usize, usize), panels: usize) -> (Image, Vec<(usize, usize)>) {
    let img = Image::read(path);
    assert_eq!((img.width, img.height), size);
    let found = img.panels();
    assert_eq!(found.len(), panels, "panels found at rows {found:?}");
    for (k, p) in found.iter().enumerate() {
        let region = img.region(*p);
        let data = data_pixels(&region);
        assert!(data.len() * 200 >= region.len(), "panel {k} is (nearly) blank: {}", data.len());
    }
    let title: Vec<[u8; 3]> = img.region((0, found[0].0 - 1));
    let ink = title.iter().filter(|c| **c == INK).count();
    assert!(ink > 200, "the title region holds {ink} text pixels");
    (img, found)
}

#[test]
fn features_plot_draws_seven_nonblank_panels_at_the_requested_size() {
    let Some(wav) = fixture("tess/OAF_back_angry.wav") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("features.png");
    let (code, stdout, stderr) =
        prosodia(&["features", "--plot", out.to_str().unwrap(), wav.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // The features themselves are still printed.
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["features"].as_object().unwrap().len(), 46);
    let (img, panels) = check_figure(&out, (1600, 1200), 7);
    // Panels 1 and 2 are the log-mel and MFCC heatmaps: many colours, no background.
    for k in [1, 2] {
        let region = img.region(panels[k]);
        assert!(distinct(&data_pixels(&region)) > 30, "heatmap {k} has few colours");
        assert!(data_pixels(&region).len() * 100 >= region.len() * 95, "heatmap {k} has holes");
    }

    let small = dir.path().join("small.png");
    let (code, _, stderr) = prosodia(&[
        "features",
        "--plot",
        small.to_str().unwrap(),
        "--plot-size",
        "800x600",
        wav.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    check_figure(&small, (800, 600), 7);
}

#[test]
fn features_plot_refuses_bad_input_and_several_files_without_writing() {
    let (Some(bad), Some(good)) =
        (fixture("bad/truncated_header.wav"), fixture("tess/OAF_back_angry.wav"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bad.png");
    let (code, stdout, stderr) =
        prosodia(&["features", "--plot", out.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("\"error\""), "{stdout}");
    assert!(stderr.contains("no plot written"), "{stderr}");
    assert!(!out.exists(), "a failed plot must not leave a file");

    let (code, _, stderr) = prosodia(&[
        "features",
        "--plot",
        out.to_str().unwrap(),
        good.to_str().unwrap(),
        good.parent().unwrap().to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("exactly one"), "{stderr}");
    assert!(!out.exists());

    let (code, _, stderr) = prosodia(&[
        "features",
        "--plot",
        out.to_str().unwrap(),
        "--plot-size",
        "20x20",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("20x20"), "{stderr}");
    assert!(!out.exists());
}

struct Fixed;

impl ModelRunner for Fixed {
    fn inputs(&self) -> Vec<TensorInfo> {
        Vec::new()
    }
    fn outputs(&self) -> Vec<TensorInfo> {
        Vec::new()
    }
    fn run(&self, batch: &Batch<'_>) -> Result<Vec<f32>, RunnerError> {
        Ok([0.1, 0.7, 0.2].repeat(batch.n))
    }
}

impl Backend for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn load(&self, _: &Path, _: &ModelManifest) -> Result<Box<dyn ModelRunner>, RunnerError> {
        Ok(Box::new(Fixed))
    }
}

/// Starts a server with one model, `m`, whose label is always "calm"; returns its URL.
async fn server(dir: &Path) -> String {
    let v = dir.join("m").join("1");
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("model.onnx"), b"-").unwrap();
    std::fs::write(v.join("features.toml"), prosodia_dsp::FeatureConfig::seed().to_toml().unwrap())
        .unwrap();
    std::fs::write(
        v.join("model.toml"),
        "labels = [\"angry\", \"calm\", \"sad\"]\nbackend = \"fixed\"\n",
    )
    .unwrap();
    let config = Config { models: Some(dir.to_path_buf()), workers: 2, ..Config::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        ServerBuilder::new(config).backend(Arc::new(Fixed)).serve(listener, std::future::pending()),
    );
    format!("http://{addr}")
}

async fn prosodia_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        prosodia(&args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_plot_draws_the_timeline_in_the_models_proportions() {
    let Some(wav) = fixture("tess/OAF_back_happy.wav") else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = server(&dir.path().join("models")).await;
    let out = dir.path().join("classify.png");
    let args =
        ["classify", "--server", &url, "--plot", out.to_str().unwrap(), wav.to_str().unwrap()];
    let (code, stdout, stderr) = prosodia_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 0, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["label"], "calm");
    assert_eq!(line["plot"], out.to_str().unwrap());

    let (img, panels) = check_figure(&out, (1600, 1200), 4);
    // Waveform, mel spectrogram, F0, timeline: the heatmap has many colours.
    assert!(distinct(&data_pixels(&img.region(panels[1]))) > 30);
    // The timeline's stacked areas hold the model's probabilities: among the pixels of the
    // three label colours, calm covers 70 %, sad 20 %, angry 10 %.
    let timeline = img.region(panels[3]);
    let count = |c: [u8; 3]| timeline.iter().filter(|p| **p == c).count() as f64;
    let (angry, calm, sad) = (count(ANGRY), count(CALM), count(SAD));
    let total = angry + calm + sad;
    eprintln!(
        "timeline areas: angry {:.4}, calm {:.4}, sad {:.4} (of {total} pixels)",
        angry / total,
        calm / total,
        sad / total
    );
    assert!(total * 4.0 > timeline.len() as f64, "the timeline is mostly empty: {total}");
    for (name, got, want) in [("angry", angry, 0.1), ("calm", calm, 0.7), ("sad", sad, 0.2)] {
        assert!((got / total - want).abs() < 0.03, "{name}: {:.3} of the areas", got / total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_plot_refuses_bad_input_and_several_files_without_writing() {
    let (Some(bad), Some(good)) = (fixture("bad/text.wav"), fixture("tess/OAF_back_angry.wav"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = server(&dir.path().join("models")).await;
    let out = dir.path().join("bad.png");
    let args =
        ["classify", "--server", &url, "--plot", out.to_str().unwrap(), bad.to_str().unwrap()];
    let (code, stdout, stderr) = prosodia_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.contains("InvalidArgument"), "{stdout}");
    assert!(stderr.contains("no plot written"), "{stderr}");
    assert!(!out.exists(), "a refused file must not leave a plot");

    let args = [
        "classify",
        "--server",
        &url,
        "--plot",
        out.to_str().unwrap(),
        good.to_str().unwrap(),
        good.to_str().unwrap(),
    ];
    let (code, _, stderr) = prosodia_async(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(code, 2);
    assert!(stderr.contains("exactly one"), "{stderr}");
    assert!(!out.exists());
}
