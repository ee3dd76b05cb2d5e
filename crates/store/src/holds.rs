//! Zones the publisher holds: the stored data of a zone could not be
//! built into a snapshot (or a signed version failed its check), so the
//! server keeps serving the zone's last good version, or nothing if it
//! had none, and says why here. Every process on the data directory sees
//! the holds (`zone list`, the API, metrics).

use rusqlite::{OptionalExtension, params};
use sixgate_dns::name;

use crate::{Store, StoreError};

/// A held zone: its apex (lowercased) and the reason.
type Held = (Box<[u8]>, String);

impl Store {
    /// Records (`Some(reason)`) or clears (`None`) a hold on a zone.
    pub fn set_hold(&mut self, apex: &[u8], reason: Option<&str>) -> Result<(), StoreError> {
        let key = name::to_lowercase(apex);
        match reason {
            Some(r) => {
                self.conn.execute(
                    "INSERT INTO zone_holds (name, reason, since) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET reason = excluded.reason",
                    params![&key[..], r, self.now()],
                )?;
            }
            None => {
                self.conn.execute("DELETE FROM zone_holds WHERE name = ?1", params![&key[..]])?;
            }
        }
        Ok(())
    }

    /// Clears every hold (a publisher starting afresh decides them anew).
    pub fn clear_holds(&mut self) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM zone_holds", [])?;
        Ok(())
    }

    /// Why a zone is held, if it is.
    pub fn hold(&self, apex: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT reason FROM zone_holds WHERE name = ?1",
                params![&name::to_lowercase(apex)[..]],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Every held zone (apex lowercased) with the reason.
    pub fn holds(&self) -> Result<Vec<Held>, StoreError> {
        let mut st = self.conn.prepare_cached("SELECT name, reason FROM zone_holds ORDER BY name")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?.into_boxed_slice(), r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
