use crate::clock::Timestamp;
use crate::event::{EventKind, ExpiredAction};

use super::{MonitorState, Snapshot};

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub hotspot_pattern: String,
    pub pppoe_pattern: String,
    pub usage_secs: u64,
    pub expired_action: ExpiredAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {}

#[derive(Debug, Clone, Default)]
pub struct StepOutput {
    pub state: MonitorState,
    pub events: Vec<EventKind>,
    pub actions: Vec<Action>,
}

pub fn step(prev: &MonitorState, _snap: &Snapshot, _now: Timestamp, _cfg: &MonitorConfig) -> StepOutput {
    StepOutput {
        state: prev.clone(),
        ..StepOutput::default()
    }
}
