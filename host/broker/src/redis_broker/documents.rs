//! The Redis backend's vCon documents and their indexes: the document
//! cache with TTLs, the vCon list (sorted by `created_at`) and the party search sets.

#[allow(clippy::wildcard_imports)]
use super::*;

#[async_trait]
impl VconDocuments for RedisBroker {
    async fn get_vcon(&self, uuid: &str) -> Result<Option<String>> {
        redis_json::get(&self.conn, &vcon_key(uuid), self.form).await.op("GET vcon")
    }

    async fn put_vcon(&self, uuid: &str, json: &str, ttl: Ttl) -> Result<()> {
        if self.form == DocumentForm::Json {
            return redis_json::put(&self.conn, &vcon_key(uuid), json, ttl).await.op("JSON.SET vcon");
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(vcon_key(uuid)).arg(json);
        match ttl {
            Ttl::Keep => cmd.arg("KEEPTTL"),
            Ttl::Secs(0) => &mut cmd,
            Ttl::Secs(secs) => cmd.arg("EX").arg(crate::clamped_ttl(secs)),
        };
        cmd.query_async::<()>(&mut self.conn()).await.op("SET vcon")
    }

    async fn delete_vcon(&self, uuid: &str) -> Result<bool> {
        let removed: u64 = self.conn().del(vcon_key(uuid)).await.op("DEL vcon")?;
        Ok(removed > 0)
    }

    async fn expire_vcon(&self, uuid: &str, secs: u64) -> Result<()> {
        let key = vcon_key(uuid);
        if secs == 0 {
            return self.conn().persist::<_, ()>(key).await.op("PERSIST vcon");
        }
        let secs = crate::clamped_ttl(secs);
        self.conn().expire::<_, ()>(key, secs).await.op("EXPIRE vcon")
    }

    async fn index_vcon(&self, uuid: &str, score: f64, terms: &[String], terms_ttl_secs: u64) -> Result<()> {
        let mut batch = Batch::default();
        self.index_commands(&mut batch, uuid, score, terms, terms_ttl_secs);
        batch.run(&self.conn).await.op("index vcon").map(drop)
    }

    async fn store_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>> {
        if self.form == DocumentForm::Json {
            let mut index = Batch::default();
            self.index_commands(&mut index, uuid, score, terms, terms_ttl_secs);
            return redis_json::replace(&self.conn, &vcon_key(uuid), json, ttl, index).await.op("store vcon");
        }
        let mut set = redis::cmd("SET");
        set.arg(vcon_key(uuid)).arg(json);
        match ttl {
            Ttl::Keep => set.arg("KEEPTTL"),
            Ttl::Secs(0) => &mut set,
            Ttl::Secs(secs) => set.arg("EX").arg(crate::clamped_ttl(secs)),
        };
        set.arg("GET");
        let mut batch = Batch::default();
        batch.add(set);
        self.index_commands(&mut batch, uuid, score, terms, terms_ttl_secs);
        let replies = match batch.run(&self.conn).await {
            // A RedisJSON document is there (`SET … GET` refuses other types):
            // read it, then write over it.
            Err(error) if redis_json::is_wrong_type(&error) => {
                let previous = self.get_vcon(uuid).await?;
                self.put_vcon(uuid, json, ttl).await?;
                let mut index = Batch::default();
                self.index_commands(&mut index, uuid, score, terms, terms_ttl_secs);
                index.run(&self.conn).await.op("index vcon")?;
                return Ok(previous);
            }
            other => other.op("store vcon")?,
        };
        let previous = replies.into_iter().next().unwrap_or(Value::Nil);
        redis::from_redis_value(previous).map_err(redis::RedisError::from).op("store vcon reply")
    }

    async fn create_vcon(
        &self,
        uuid: &str,
        json: &str,
        ttl: Ttl,
        score: f64,
        terms: &[String],
        terms_ttl_secs: u64,
    ) -> Result<Option<String>> {
        // `SET NX` decides; only the writer that created the document indexes
        // it. An existing document that expires between the `SET` and the
        // `GET` makes the next round store this one.
        for _ in 0..3 {
            let created = if self.form == DocumentForm::Json {
                redis_json::create(&self.conn, &vcon_key(uuid), json).await.op("JSON.SET NX vcon")?
            } else {
                let mut set = redis::cmd("SET");
                set.arg(vcon_key(uuid)).arg(json).arg("NX");
                if let Ttl::Secs(secs @ 1..) = ttl {
                    set.arg("EX").arg(crate::clamped_ttl(secs));
                }
                let created: Option<String> = set.query_async(&mut self.conn()).await.op("SET NX vcon")?;
                created.is_some()
            };
            if created {
                let mut batch = Batch::default();
                if self.form == DocumentForm::Json
                    && let Ttl::Secs(secs @ 1..) = ttl
                {
                    // `JSON.SET` takes no TTL: set with the index, in the same round trip.
                    batch.add(redis::Cmd::expire(vcon_key(uuid), crate::clamped_ttl(secs)));
                }
                self.index_commands(&mut batch, uuid, score, terms, terms_ttl_secs);
                batch.run(&self.conn).await.op("index vcon")?;
                return Ok(None);
            }
            if let Some(existing) = self.get_vcon(uuid).await? {
                return Ok(Some(existing));
            }
        }
        Err(BrokerError::Contended(format!(
            "vcon:{uuid} kept appearing and expiring while it was created; send it again"
        )))
    }

    async fn unindex_vcon(&self, uuid: &str, terms: &[String]) -> Result<()> {
        let mut batch = Batch::default();
        batch.add(redis::Cmd::zrem(&self.sorted_set, &[uuid.to_string(), vcon_key(uuid)]));
        for term in terms {
            batch.add(redis::Cmd::srem(term, uuid));
        }
        batch.run(&self.conn).await.op("unindex vcon").map(drop)
    }

    async fn list_vcons(&self, min: Option<f64>, max: Option<f64>, offset: u64, count: u64) -> Result<Vec<String>> {
        let bound = |b: Option<f64>, open: &str| b.map_or_else(|| open.to_string(), |v| v.to_string());
        let members: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(&self.sorted_set)
            .arg(bound(max, "+inf"))
            .arg(bound(min, "-inf"))
            .arg("LIMIT")
            .arg(i64::try_from(offset).unwrap_or(i64::MAX))
            .arg(i64::try_from(count).unwrap_or(i64::MAX))
            .query_async(&mut self.conn())
            .await
            .op("ZREVRANGEBYSCORE")?;
        let mut seen = std::collections::HashSet::new();
        Ok(members.iter().map(|m| member_uuid(m).to_string()).filter(|u| seen.insert(u.clone())).collect())
    }

    async fn search(&self, terms: &[String]) -> Result<Vec<String>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        if !self.conn.is_cluster() {
            return self.conn().sinter(terms).await.op("SINTER");
        }
        // The sets live in different slots: intersect here.
        let mut result: Option<std::collections::HashSet<String>> = None;
        for term in terms {
            let members: std::collections::HashSet<String> = self.conn().smembers(term).await.op("SMEMBERS")?;
            result = Some(match result {
                None => members,
                Some(so_far) => so_far.intersection(&members).cloned().collect(),
            });
        }
        Ok(result.unwrap_or_default().into_iter().collect())
    }

    async fn vcon_uuids(&self) -> Result<Vec<String>> {
        let mut conn = self.conn();
        if let Conn::Cluster(cluster, _) = &mut conn {
            // SCAN cursors are per node; ask every primary and combine the answers.
            let routing =
                RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(ResponsePolicy::CombineArrays)));
            let mut keys_cmd = redis::cmd("KEYS");
            keys_cmd.arg("vcon:*");
            let reply = cluster.route_command(keys_cmd, routing).await.op("KEYS on every primary")?;
            let keys: Vec<String> = redis::from_redis_value(reply).map_err(redis::RedisError::from).op("KEYS reply")?;
            let mut uuids: Vec<String> =
                keys.into_iter().filter_map(|k| k.strip_prefix("vcon:").map(String::from)).collect();
            uuids.sort();
            uuids.dedup();
            return Ok(uuids);
        }
        let mut cursor: u64 = 0;
        let mut uuids = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("vcon:*")
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .op("SCAN")?;
            uuids.extend(keys.into_iter().filter_map(|k| k.strip_prefix("vcon:").map(String::from)));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        uuids.sort();
        uuids.dedup();
        Ok(uuids)
    }
}
