//! The programs' drop events (`lb_events`). A ring buffer has one consumer
//! position, shared by every process that maps it: only the daemon drains
//! it, and `lanbridge monitor` gets the events from the daemon.

use aya::maps::{Map, MapData, MapInfo, RingBuf};
use lanbridge_common::{event::DropEvent, MAP_EVENTS};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::error::DatapathError;
use super::pins::Pins;

pub struct EventRing {
    ring: AsyncFd<RingBuf<MapData>>,
    id: u32,
}

impl EventRing {
    /// The network's pinned ring; `None` when it has none (not loaded, or
    /// loaded by a build from before drop events).
    pub fn open(pins: &Pins) -> Result<Option<EventRing>, DatapathError> {
        let path = pins.object(MAP_EVENTS);
        if !path.exists() {
            return Ok(None);
        }
        let err = |source| DatapathError::Map {
            name: MAP_EVENTS,
            source,
        };
        let data = MapData::from_pin(&path).map_err(err)?;
        let id = data.info().map_err(err)?.id();
        let ring = RingBuf::try_from(Map::RingBuf(data)).map_err(err)?;
        // SAFETY: the ring owns its map's fd, open until the ring is
        // dropped, and always returns that fd.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| DatapathError::io(format!("polling {}", path.display()), e.into()))?;
        Ok(Some(EventRing { ring, id }))
    }

    /// The id of the map pinned for `pins` now, if any: another id than
    /// [`EventRing::id`] means the network was reloaded or removed.
    pub fn pinned_id(pins: &Pins) -> Option<u32> {
        MapInfo::from_pin(pins.object(MAP_EVENTS))
            .ok()
            .map(|info| info.id())
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next events, waiting for at least one.
    pub async fn next(&mut self) -> Result<Vec<DropEvent>, DatapathError> {
        loop {
            let mut ready = self
                .ring
                .readable_mut()
                .await
                .map_err(|e| DatapathError::io("polling lb_events", e))?;
            let ring = ready.get_inner_mut();
            let mut events = Vec::new();
            while let Some(item) = ring.next() {
                if item.len() >= size_of::<DropEvent>() {
                    // SAFETY: plain data, any bit pattern valid; the item
                    // holds at least one event.
                    events.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) });
                }
            }
            ready.clear_ready();
            if !events.is_empty() {
                return Ok(events);
            }
        }
    }
}
