//! A hand-drawn 5×9 bitmap font for the printable ASCII range, so the plots need no system
//! font and no font file: plotters' own text support needs font-kit/fontconfig or a bundled
//! TTF, and without it plotters panics when asked to draw text.
//!
//! Each glyph is nine rows of five pixels; bit 4 of a row is its leftmost pixel. Rows 0–6
//! hold capitals and digits (the baseline is under row 6), rows 2–6 the lower-case x-height,
//! rows 7–8 the descenders. Characters outside the printable ASCII range draw as `?`.

/// Glyph width in pixels (at scale 1).
pub(crate) const GLYPH_W: u32 = 5;
/// Glyph height in pixels, descenders included (at scale 1).
pub(crate) const GLYPH_H: u32 = 9;
/// Horizontal distance between the starts of consecutive characters (at scale 1): the glyph
/// and one blank column.
pub(crate) const ADVANCE: u32 = GLYPH_W + 1;

/// The first character of the table (space).
const FIRST: u32 = 0x20;

/// Glyphs for `' '..='~'`, in code-point order.
#[rustfmt::skip]
const GLYPHS: [[u8; 9]; 95] = [
    [0, 0, 0, 0, 0, 0, 0, 0, 0], // ' '
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0, 0b00100, 0, 0], // !
    [0b01010, 0b01010, 0b01010, 0, 0, 0, 0, 0, 0], // "
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010, 0, 0], // #
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100, 0, 0], // $
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011, 0, 0], // %
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101, 0, 0], // &
    [0b00100, 0b00100, 0b01000, 0, 0, 0, 0, 0, 0], // '
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0, 0], // (
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0, 0], // )
    [0, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0, 0, 0], // *
    [0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0, 0, 0], // +
    [0, 0, 0, 0, 0, 0b01100, 0b01100, 0b00100, 0b01000], // ,
    [0, 0, 0, 0b11111, 0, 0, 0, 0, 0], // -
    [0, 0, 0, 0, 0, 0b01100, 0b01100, 0, 0], // .
    [0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0, 0, 0], // /
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0, 0], // 0
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0], // 1
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0, 0], // 2
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0, 0], // 3
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0, 0], // 4
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0, 0], // 5
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0, 0], // 6
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0, 0], // 7
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0, 0], // 8
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0, 0], // 9
    [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0, 0, 0], // :
    [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0b00100, 0b01000, 0], // ;
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010, 0, 0], // <
    [0, 0, 0b11111, 0, 0b11111, 0, 0, 0, 0], // =
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000, 0, 0], // >
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0, 0b00100, 0, 0], // ?
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110, 0, 0], // @
    [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0, 0], // A
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110, 0, 0], // B
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110, 0, 0], // C
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100, 0, 0], // D
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111, 0, 0], // E
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000, 0, 0], // F
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111, 0, 0], // G
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0, 0], // H
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0], // I
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100, 0, 0], // J
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001, 0, 0], // K
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0, 0], // L
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001, 0, 0], // M
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0, 0], // N
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0, 0], // O
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000, 0, 0], // P
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101, 0, 0], // Q
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001, 0, 0], // R
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110, 0, 0], // S
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0, 0], // T
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0, 0], // U
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0, 0], // V
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010, 0, 0], // W
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001, 0, 0], // X
    [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0, 0], // Y
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111, 0, 0], // Z
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110, 0, 0], // [
    [0, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0, 0, 0], // backslash
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110, 0, 0], // ]
    [0b00100, 0b01010, 0b10001, 0, 0, 0, 0, 0, 0], // ^
    [0, 0, 0, 0, 0, 0, 0, 0b11111, 0], // _
    [0b01000, 0b00100, 0b00010, 0, 0, 0, 0, 0, 0], // `
    [0, 0, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0, 0], // a
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0, 0], // b
    [0, 0, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0, 0], // c
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0, 0], // d
    [0, 0, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0, 0], // e
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0, 0], // f
    [0, 0, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // g
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0, 0], // h
    [0b00100, 0, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0], // i
    [0b00010, 0, 0b00110, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100], // j
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0, 0], // k
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0, 0], // l
    [0, 0, 0b11010, 0b10101, 0b10101, 0b10101, 0b10101, 0, 0], // m
    [0, 0, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0, 0], // n
    [0, 0, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0, 0], // o
    [0, 0, 0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000], // p
    [0, 0, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001], // q
    [0, 0, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0, 0], // r
    [0, 0, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110, 0, 0], // s
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0, 0], // t
    [0, 0, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0, 0], // u
    [0, 0, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0, 0], // v
    [0, 0, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0, 0], // w
    [0, 0, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0, 0], // x
    [0, 0, 0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110], // y
    [0, 0, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0, 0], // z
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010, 0, 0], // {
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0, 0], // |
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000, 0, 0], // }
    [0, 0, 0b01000, 0b10101, 0b00010, 0, 0, 0, 0], // ~
];

/// The glyph of `c`; characters the table lacks draw as `?`.
pub(crate) fn glyph(c: char) -> &'static [u8; 9] {
    let index = (c as u32).checked_sub(FIRST).map(|i| i as usize);
    match index.and_then(|i| GLYPHS.get(i)) {
        Some(g) => g,
        None => &GLYPHS[('?' as u32 - FIRST) as usize],
    }
}

/// Width in pixels of `text` drawn at `scale`: one advance per character, so the last
/// character's blank column is included.
pub(crate) fn text_width(text: &str, scale: u32) -> u32 {
    text.chars().count() as u32 * ADVANCE * scale
}

/// Height in pixels of a line of text at `scale`, descenders included.
pub(crate) fn text_height(scale: u32) -> u32 {
    GLYPH_H * scale
}

/// Calls `put(x, y)` for every lit pixel of `text` drawn with its top-left corner at the
/// origin, each font pixel a `scale`×`scale` square.
pub(crate) fn render(text: &str, scale: u32, mut put: impl FnMut(i32, i32)) {
    let s = scale as i32;
    for (i, c) in text.chars().enumerate() {
        let x0 = i as i32 * (ADVANCE as i32) * s;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..GLYPH_W as i32 {
                if bits & (1 << (GLYPH_W as i32 - 1 - col)) != 0 {
                    for dy in 0..s {
                        for dx in 0..s {
                            put(x0 + col * s + dx, row as i32 * s + dy);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_printable_character_has_its_own_nonblank_glyph() {
        let mut seen = HashSet::new();
        for c in ' '..='~' {
            let g = glyph(c);
            assert!(g.iter().all(|row| *row < 1 << GLYPH_W), "{c:?} is wider than the cell");
            if c != ' ' {
                assert!(g.iter().any(|row| *row != 0), "{c:?} is blank");
            }
            assert!(seen.insert(*g), "{c:?} looks like another character");
        }
        assert_eq!(seen.len(), 95);
    }

    #[test]
    fn characters_outside_the_table_draw_as_a_question_mark() {
        assert_eq!(glyph('é'), glyph('?'));
        assert_eq!(glyph('\n'), glyph('?'));
        assert_eq!(glyph('\u{7f}'), glyph('?'));
    }

    fn bounds(text: &str, scale: u32) -> Option<(i32, i32, i32, i32)> {
        let mut b: Option<(i32, i32, i32, i32)> = None;
        render(text, scale, |x, y| {
            b = Some(match b {
                None => (x, y, x, y),
                Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
            });
        });
        b
    }

    #[test]
    fn rendering_fills_the_advertised_width_and_height_at_each_scale() {
        for scale in 1..=4 {
            // "M" spans the full cell width, "y" the full height (descender included).
            let (x0, _, x1, _) = bounds("M", scale).unwrap_or_default();
            assert_eq!((x0, x1 + 1), (0, (GLYPH_W * scale) as i32));
            let (_, y0, _, y1) = bounds("Ty", scale).unwrap_or_default();
            assert_eq!((y0, y1 + 1), (0, text_height(scale) as i32));
            // The last lit column of n full-width glyphs is one blank column short of
            // text_width.
            let text = "MMMM";
            let (_, _, x1, _) = bounds(text, scale).unwrap_or_default();
            assert_eq!(x1 + 1, (text_width(text, scale) - scale) as i32);
        }
        assert_eq!(bounds("   ", 2), None);
        assert_eq!(text_width("", 3), 0);
    }

    #[test]
    fn each_font_pixel_becomes_a_scale_by_scale_square() {
        let mut one = 0;
        render("Hz 0.5", 1, |_, _| one += 1);
        let mut three = 0;
        render("Hz 0.5", 3, |_, _| three += 1);
        assert!(one > 0);
        assert_eq!(three, one * 9);
    }
}
