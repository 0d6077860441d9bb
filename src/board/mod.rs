//! The box's front panel: three status LEDs, one button, the CPU temperature.
//!
//! [`Board`] is the hardware seam. With the `rpi` cargo feature, [`rpi::RpiBoard`] drives BCM
//! GPIO pins (from `[board]` in the configuration) through `rppal`; every other build uses
//! [`SimBoard`], which logs LED changes and reads the temperature from `/sys` where it exists.
//!
//! The board never drives the pipeline: [`Panel`] turns the service's state snapshot into LED
//! states, and the button only acknowledges the attention light (short press) or asks the
//! service to stop gracefully so power can be cut (long press).

#[cfg(feature = "rpi")]
pub mod rpi;

use std::time::{Duration, Instant};

use crate::service::state::{Phase, Snapshot};

/// LED states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leds {
    /// Green: the service runs and takes cases.
    pub ready: bool,
    /// Yellow: a case is being processed.
    pub busy: bool,
    /// Red: something needs a person (a case failed, intake paused, too hot).
    pub attention: bool,
}

/// A button event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press {
    /// Released before the long-press time.
    Short,
    /// Held for the long-press time.
    Long,
}

/// The hardware.
pub trait Board: Send {
    /// Sets the three LEDs.
    fn set_leds(&mut self, leds: Leds);
    /// Whether the button is held down right now.
    fn button_down(&mut self) -> bool;
    /// CPU temperature, °C.
    fn temperature_c(&mut self) -> Option<f64>;
}

/// A board without hardware: logs LED changes.
#[derive(Debug, Default)]
pub struct SimBoard {
    leds: Option<Leds>,
}

impl Board for SimBoard {
    fn set_leds(&mut self, leds: Leds) {
        if self.leds != Some(leds) {
            tracing::info!(
                ready = leds.ready,
                busy = leds.busy,
                attention = leds.attention,
                "board (simulated): LEDs"
            );
            self.leds = Some(leds);
        }
    }

    fn button_down(&mut self) -> bool {
        false
    }

    fn temperature_c(&mut self) -> Option<f64> {
        crate::service::health::thermal_zone_c()
    }
}

/// The board chosen by the build: GPIO with the `rpi` feature, else simulated.
pub fn default_board(
    config: &crate::config::appliance::BoardConfig,
) -> Result<Box<dyn Board>, String> {
    #[cfg(feature = "rpi")]
    {
        rpi::RpiBoard::new(config)
            .map(|b| Box::new(b) as Box<dyn Board>)
            .map_err(|e| e.to_string())
    }
    #[cfg(not(feature = "rpi"))]
    {
        let _ = config;
        Ok(Box::new(SimBoard::default()))
    }
}

/// Button debouncing and the mapping from state to LEDs.
#[derive(Debug)]
pub struct Panel {
    long_press: Duration,
    pressed_since: Option<Instant>,
    long_fired: bool,
    acknowledged_failures: u64,
}

impl Panel {
    /// With the long-press duration.
    pub fn new(long_press: Duration) -> Panel {
        Panel {
            long_press,
            pressed_since: None,
            long_fired: false,
            acknowledged_failures: 0,
        }
    }

    /// Feeds one sample of the button; returns a press when one completes.
    pub fn sample_button(&mut self, down: bool, now: Instant) -> Option<Press> {
        match (down, self.pressed_since) {
            (true, None) => {
                self.pressed_since = Some(now);
                self.long_fired = false;
                None
            }
            (true, Some(t)) if !self.long_fired && now.duration_since(t) >= self.long_press => {
                self.long_fired = true;
                Some(Press::Long)
            }
            (false, Some(_)) => {
                self.pressed_since = None;
                (!self.long_fired).then_some(Press::Short)
            }
            _ => None,
        }
    }

    /// A short press: the failures seen so far no longer light the attention LED.
    pub fn acknowledge(&mut self, s: &Snapshot) {
        self.acknowledged_failures = s.counters.failed;
    }

    /// LED states for a snapshot.
    pub fn leds(&self, s: &Snapshot) -> Leds {
        Leds {
            ready: s.phase == Phase::Running,
            busy: s.current.is_some(),
            attention: s.counters.failed > self.acknowledged_failures || s.pause_reason.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::processor::ProcessorInfo;

    #[test]
    fn short_and_long_presses() {
        let mut p = Panel::new(Duration::from_secs(3));
        let t = Instant::now();
        assert_eq!(p.sample_button(true, t), None);
        assert_eq!(
            p.sample_button(false, t + Duration::from_millis(200)),
            Some(Press::Short)
        );
        assert_eq!(p.sample_button(true, t + Duration::from_secs(10)), None);
        assert_eq!(p.sample_button(true, t + Duration::from_secs(12)), None);
        assert_eq!(
            p.sample_button(true, t + Duration::from_secs(13)),
            Some(Press::Long)
        );
        assert_eq!(p.sample_button(true, t + Duration::from_secs(14)), None);
        assert_eq!(p.sample_button(false, t + Duration::from_secs(15)), None);
    }

    #[test]
    fn attention_until_acknowledged() {
        let info = ProcessorInfo {
            model_name: "m".into(),
            model_version: "1".into(),
            demo: true,
            precision: "f32".into(),
            card_summary: String::new(),
        };
        let mut s = Snapshot::new(info, 0);
        let mut p = Panel::new(Duration::from_secs(3));
        assert_eq!(
            p.leds(&s),
            Leds {
                ready: true,
                busy: false,
                attention: false
            }
        );
        s.counters.failed = 2;
        assert!(p.leds(&s).attention);
        p.acknowledge(&s);
        assert!(!p.leds(&s).attention);
        s.pause_reason = Some("disk".into());
        assert!(p.leds(&s).attention);
    }
}
