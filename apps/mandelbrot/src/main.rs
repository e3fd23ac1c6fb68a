//! Render one tile of a Mandelbrot picture as a PPM image: a Bag-of-Tasks demo app for wasm32-wasip1.
//!
//! Usage: `mandelbrot WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER]`, with the task's 0-based index
//! in the bag in `IEXEC_BOT_TASK_INDEX`. Task `i` renders tile `(i % TILES_X, i / TILES_X)`
//! (row-major) of a `WIDTH` x `HEIGHT` picture cut into `TILES_X` x `TILES_Y` equal tiles,
//! and writes it to `/out/tile.ppm` (binary PPM, `P6`, maxval 255).
//!
//! Every pixel's colour is computed from its coordinates in the whole picture, never from its
//! place in the tile, so a pixel has the same colour whichever tiling renders it and the tiles
//! put side by side are byte for byte the picture rendered as one tile.
//!
//! Exit codes: 0 done, 1 the output could not be written, 2 bad arguments or task index.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::process::ExitCode;

/// Largest picture side, pixels (the host-side `Tiling` keeps the same limits).
const SIDE_PX_MAX: u32 = 8192;
/// Most tiles in one picture (tasks in one bag).
const TILES_MAX: u32 = 16_384;
/// Most pixels in one tile, so a tile stays well inside a task's memory and output limits.
const TILE_PX_MAX: u64 = 1 << 22;
/// Largest iteration count per pixel.
const MAX_ITER_MAX: u32 = 1 << 16;
/// Iteration count when `MAX_ITER` is not given.
const MAX_ITER_DEFAULT: u32 = 256;
/// Where the tile is written.
const OUTPUT_PATH: &str = "/out/tile.ppm";
/// The environment variable that holds the task's index in the bag.
const TASK_INDEX_ENV: &str = "IEXEC_BOT_TASK_INDEX";
const USAGE: &str = "usage: mandelbrot WIDTH HEIGHT TILES_X TILES_Y [MAX_ITER] \
                     (tile index in IEXEC_BOT_TASK_INDEX)";

/// The region shown when the picture has a 4:3 aspect ratio; other ratios widen it.
const CENTER_X: f64 = -0.6;
const SPAN_X: f64 = 3.2;
const SPAN_Y: f64 = 2.4;
/// Squared escape radius; a large radius makes the smooth colouring below accurate.
const ESCAPE_RADIUS_SQUARED: f64 = 65536.0;

/// Colour stops of the palette, as (position in [0, 1), red, green, blue); it wraps around.
const PALETTE: [(f64, [u8; 3]); 5] = [
    (0.0, [4, 8, 60]),
    (0.18, [28, 100, 200]),
    (0.40, [230, 250, 255]),
    (0.62, [250, 175, 20]),
    (0.84, [90, 20, 10]),
];
/// Smooth iterations per full cycle of the palette.
const PALETTE_PERIOD: f64 = 48.0;

/// The validated request: which tile of which picture.
struct Request {
    width: u32,
    height: u32,
    tile_width: u32,
    tile_height: u32,
    tile_x: u32,
    tile_y: u32,
    max_iter: u32,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let index = std::env::var(TASK_INDEX_ENV).ok();
    let request = match parse(&args, index.as_deref()) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("mandelbrot: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match render(&request) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mandelbrot: cannot write {OUTPUT_PATH}: {error}");
            ExitCode::from(1)
        }
    }
}

/// Parses the optional integer argument at `position`, within `1..=max`, naming it on failure.
fn number(args: &[String], position: usize, name: &str, max: u32) -> Result<Option<u32>, String> {
    let Some(text) = args.get(position) else {
        return Ok(None);
    };
    match text.parse::<u32>() {
        Ok(value) if (1..=max).contains(&value) => Ok(Some(value)),
        _ => Err(format!("{name} must be an integer from 1 to {max}, got {text:?}")),
    }
}

fn required(args: &[String], position: usize, name: &str, max: u32) -> Result<u32, String> {
    number(args, position, name, max)?.ok_or_else(|| format!("missing argument {name}"))
}

fn parse(args: &[String], index: Option<&str>) -> Result<Request, String> {
    if args.len() > 5 {
        return Err(format!("expected at most 5 arguments, got {}", args.len()));
    }
    let width = required(args, 0, "WIDTH", SIDE_PX_MAX)?;
    let height = required(args, 1, "HEIGHT", SIDE_PX_MAX)?;
    let tiles_x = required(args, 2, "TILES_X", TILES_MAX)?;
    let tiles_y = required(args, 3, "TILES_Y", TILES_MAX)?;
    let max_iter = number(args, 4, "MAX_ITER", MAX_ITER_MAX)?.unwrap_or(MAX_ITER_DEFAULT);
    let tiles = u64::from(tiles_x) * u64::from(tiles_y);
    if tiles > u64::from(TILES_MAX) {
        return Err(format!(
            "TILES_X x TILES_Y must be at most {TILES_MAX} tiles, got {tiles_x} x {tiles_y} = {tiles}"
        ));
    }
    if width % tiles_x != 0 {
        return Err(format!("WIDTH {width} is not divisible by TILES_X {tiles_x}"));
    }
    if height % tiles_y != 0 {
        return Err(format!("HEIGHT {height} is not divisible by TILES_Y {tiles_y}"));
    }
    let (tile_width, tile_height) = (width / tiles_x, height / tiles_y);
    let tile_px = u64::from(tile_width) * u64::from(tile_height);
    if tile_px > TILE_PX_MAX {
        return Err(format!(
            "a tile of {tile_width} x {tile_height} = {tile_px} pixels is above the limit of \
             {TILE_PX_MAX}: use more tiles"
        ));
    }
    let index = index.ok_or_else(|| {
        format!("{TASK_INDEX_ENV} is not set (the 0-based index of this task in the bag)")
    })?;
    let index: u64 = index
        .parse()
        .map_err(|_| format!("{TASK_INDEX_ENV} must be a non-negative integer, got {index:?}"))?;
    if index >= tiles {
        return Err(format!(
            "task index {index} ({TASK_INDEX_ENV}) is out of range: the tiling has {tiles} tiles \
             ({tiles_x} x {tiles_y}), indices 0 to {}",
            tiles - 1
        ));
    }
    // Both fit: index < tiles_x * tiles_y, each at most TILES_MAX.
    let tile_x = (index % u64::from(tiles_x)) as u32;
    let tile_y = (index / u64::from(tiles_x)) as u32;
    Ok(Request { width, height, tile_width, tile_height, tile_x, tile_y, max_iter })
}

fn render(request: &Request) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(OUTPUT_PATH)?);
    write!(out, "P6\n{} {}\n255\n", request.tile_width, request.tile_height)?;
    let width = f64::from(request.width);
    let height = f64::from(request.height);
    // Units per pixel: the whole 4:3 region fits, the other side widens to keep pixels square.
    let scale = (SPAN_X / width).max(SPAN_Y / height);
    let x0 = request.tile_x * request.tile_width;
    let y0 = request.tile_y * request.tile_height;
    let mut row = Vec::with_capacity(request.tile_width as usize * 3);
    for py in y0..y0 + request.tile_height {
        row.clear();
        let cy = (height / 2.0 - f64::from(py) - 0.5) * scale;
        for px in x0..x0 + request.tile_width {
            let cx = CENTER_X + (f64::from(px) + 0.5 - width / 2.0) * scale;
            row.extend_from_slice(&colour(escape_time(cx, cy, request.max_iter)));
        }
        out.write_all(&row)?;
    }
    out.flush()
}

/// The smooth (continuous) escape time of `c = cx + i cy`, or `None` inside the set.
fn escape_time(cx: f64, cy: f64, max_iter: u32) -> Option<f64> {
    // The main cardioid and the period-2 bulb are inside; skipping them saves most of the
    // work on overview pictures without changing any colour.
    let qx = cx - 0.25;
    let q = qx * qx + cy * cy;
    if q * (q + qx) <= 0.25 * cy * cy || (cx + 1.0) * (cx + 1.0) + cy * cy <= 0.0625 {
        return None;
    }
    let (mut zx, mut zy) = (0.0_f64, 0.0_f64);
    for n in 0..max_iter {
        let (zx2, zy2) = (zx * zx, zy * zy);
        let r2 = zx2 + zy2;
        if r2 > ESCAPE_RADIUS_SQUARED {
            // n - log2(log2 |z|), shifted so it starts near 0 for points that escape at once.
            let log2_modulus = 0.5 * r2.ln() / std::f64::consts::LN_2;
            let smooth = f64::from(n) + 4.0 - log2_modulus.ln() / std::f64::consts::LN_2;
            return Some(smooth.max(0.0));
        }
        zy = 2.0 * zx * zy + cy;
        zx = zx2 - zy2 + cx;
    }
    None
}

/// The palette's colour for a smooth escape time; black inside the set.
fn colour(time: Option<f64>) -> [u8; 3] {
    let Some(time) = time else {
        return [0, 0, 0];
    };
    let cycles = time / PALETTE_PERIOD;
    let position = cycles - cycles.floor();
    let mut stop = 0;
    while stop + 1 < PALETTE.len() && PALETTE[stop + 1].0 <= position {
        stop += 1;
    }
    let (start, from) = PALETTE[stop];
    let (end, to) = PALETTE.get(stop + 1).copied().unwrap_or((1.0, PALETTE[0].1));
    let fraction = (position - start) / (end - start);
    let mut rgb = [0; 3];
    for ((channel, a), b) in rgb.iter_mut().zip(from).zip(to) {
        let value = f64::from(a) + (f64::from(b) - f64::from(a)) * fraction;
        // A saturating cast; `value` is within 0..=255 by construction.
        *channel = (value + 0.5) as u8;
    }
    rgb
}
