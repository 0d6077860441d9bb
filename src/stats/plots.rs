//! Line charts for the validation report (ROC with a confidence band, calibration, decision
//! curve), drawn with plotters to SVG and to PNG (the bitmap is encoded with the crate's `image`
//! dependency; text is rendered with an embedded TTF font through ab_glyph, so no system fonts
//! are needed on the box).

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Colour number `i` of the palette.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend text (empty: not in the legend).
    pub name: String,
    /// Points in data coordinates.
    pub points: Vec<(f64, f64)>,
    /// Palette index, or `None` for grey.
    pub colour: Option<usize>,
    /// Draw markers at the points.
    pub markers: bool,
}

/// A shaded band `(x, low, high)`.
#[derive(Debug, Clone)]
pub struct Band {
    /// Points.
    pub points: Vec<(f64, f64, f64)>,
    /// Palette index.
    pub colour: usize,
}

/// A chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// X range.
    pub x_range: (f64, f64),
    /// Y range.
    pub y_range: (f64, f64),
    /// Lines, drawn in order.
    pub lines: Vec<Line>,
    /// Bands, drawn under the lines.
    pub bands: Vec<Band>,
    /// Legend in the upper right corner (else lower right).
    pub legend_upper: bool,
}

/// A rendered chart.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// SVG text.
    pub svg: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The font is compiled in; registration cannot fail for valid TTF bytes, and if it did
        // the PNG would only lack text (plotters then reports an error we pass on).
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

const W: u32 = 640;
const H: u32 = 520;

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, c: &Chart) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut ch = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(54)
        .build_cartesian_2d(c.x_range.0..c.x_range.1, c.y_range.0..c.y_range.1)
        .map_err(e)?;
    ch.configure_mesh()
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for b in &c.bands {
        let mut poly: Vec<(f64, f64)> = b.points.iter().map(|&(x, lo, _)| (x, lo)).collect();
        poly.extend(b.points.iter().rev().map(|&(x, _, hi)| (x, hi)));
        ch.draw_series(std::iter::once(Polygon::new(
            poly,
            colour(b.colour).mix(0.18).filled(),
        )))
        .map_err(e)?;
    }
    for l in &c.lines {
        let col = l.colour.map_or(RGBColor(150, 150, 150), colour);
        let s = ch
            .draw_series(LineSeries::new(l.points.clone(), col.stroke_width(2)))
            .map_err(e)?;
        if !l.name.is_empty() {
            s.label(l.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(3))
            });
        }
        if l.markers {
            ch.draw_series(l.points.iter().map(|&p| Circle::new(p, 3, col.filled())))
                .map_err(e)?;
        }
    }
    ch.configure_series_labels()
        .position(if c.legend_upper {
            SeriesLabelPosition::UpperRight
        } else {
            SeriesLabelPosition::LowerRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Renders a chart to SVG and PNG.
pub fn render(c: &Chart) -> Result<Rendered, String> {
    register_font();
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area(),
        c,
    )?;
    let mut rgb = vec![0u8; (W * H * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, (W, H)).into_drawing_area(),
        c,
    )?;
    let img = image::RgbImage::from_raw(W, H, rgb).ok_or("bitmap size mismatch")?;
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("PNG encoding: {e}"))?;
    Ok(Rendered { svg, png })
}
