//! Raspberry Pi GPIO through `rppal` (cargo feature `rpi`): three LEDs (active high) and a
//! button to ground with the internal pull-up, on the BCM pins from `[board]`.

use rppal::gpio::{Gpio, InputPin, OutputPin};

use super::{Board, Leds};
use crate::config::appliance::BoardConfig;

/// The real front panel.
#[derive(Debug)]
pub struct RpiBoard {
    ready: OutputPin,
    busy: OutputPin,
    attention: OutputPin,
    button: InputPin,
}

impl RpiBoard {
    /// Opens the GPIO pins.
    pub fn new(config: &BoardConfig) -> Result<RpiBoard, rppal::gpio::Error> {
        let gpio = Gpio::new()?;
        Ok(RpiBoard {
            ready: gpio.get(config.led_ready)?.into_output_low(),
            busy: gpio.get(config.led_busy)?.into_output_low(),
            attention: gpio.get(config.led_attention)?.into_output_low(),
            button: gpio.get(config.button)?.into_input_pullup(),
        })
    }
}

fn set(pin: &mut OutputPin, on: bool) {
    if on {
        pin.set_high()
    } else {
        pin.set_low()
    }
}

impl Board for RpiBoard {
    fn set_leds(&mut self, leds: Leds) {
        set(&mut self.ready, leds.ready);
        set(&mut self.busy, leds.busy);
        set(&mut self.attention, leds.attention);
    }

    fn button_down(&mut self) -> bool {
        self.button.is_low()
    }

    fn temperature_c(&mut self) -> Option<f64> {
        crate::service::health::thermal_zone_c()
    }
}
