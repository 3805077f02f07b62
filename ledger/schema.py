"""The ledger's schema, as an ordered list of migrations. ``PRAGMA user_version`` (SQLite) or the
``schema_version`` table (PostgreSQL) records how many have been applied. Never edit a released
migration: add a new one."""

MIGRATIONS: list[str] = [
    # 1: the books, terminals, cards and the idempotency record.
    """
    CREATE TABLE park (
        park_id            TEXT PRIMARY KEY,
        name               TEXT NOT NULL,
        currency           TEXT NOT NULL DEFAULT 'CNY',
        time_zone          TEXT NOT NULL DEFAULT 'Asia/Shanghai',
        -- a park's business day may end after midnight (night markets, BBQ): minutes after 00:00
        day_cutoff_minutes INTEGER NOT NULL DEFAULT 240,
        card_fee_fen       INTEGER NOT NULL DEFAULT 2000
    );
    CREATE TABLE station (
        park_id        TEXT NOT NULL REFERENCES park,
        station_id     TEXT NOT NULL,
        name           TEXT NOT NULL,
        contractor_id  TEXT,                       -- NULL: run by the park itself
        commission_bp  INTEGER NOT NULL DEFAULT 0 CHECK (commission_bp BETWEEN 0 AND 10000),
        PRIMARY KEY (park_id, station_id)
    );
    CREATE TABLE terminal (
        terminal_id          TEXT PRIMARY KEY,     -- never reused, even after decommissioning
        park_id              TEXT NOT NULL REFERENCES park,
        station_id           TEXT NOT NULL,
        allowed_kinds        TEXT NOT NULL,        -- comma-separated request types
        revoked_from_seq     INTEGER,              -- requests with seq >= this are refused
        broker_password_hash TEXT NOT NULL,
        created_ms           INTEGER NOT NULL
    );
    CREATE TABLE terminal_key (
        key_id      TEXT PRIMARY KEY,
        terminal_id TEXT NOT NULL REFERENCES terminal,
        public_key  BLOB NOT NULL,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE card (
        park_id      TEXT NOT NULL,
        card_no      TEXT NOT NULL,
        issuance     INTEGER NOT NULL,
        uid          TEXT NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('temporary', 'member')),
        state        TEXT NOT NULL CHECK (state IN ('active', 'blocked', 'returned')),
        card_fee_fen INTEGER NOT NULL,
        issued_txn   INTEGER NOT NULL,
        PRIMARY KEY (park_id, card_no, issuance)
    );
    CREATE TABLE account (
        park_id    TEXT NOT NULL,
        account_id TEXT NOT NULL,
        PRIMARY KEY (park_id, account_id)
    );
    -- Running balances exist only where a decision needs one: a card's. Station, channel and
    -- revenue balances are derived from postings, so sales at different stations never contend.
    CREATE TABLE card_balance (
        park_id    TEXT NOT NULL,
        account_id TEXT NOT NULL,
        fen        INTEGER NOT NULL DEFAULT 0,
        bonus      INTEGER NOT NULL DEFAULT 0,
        points     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (park_id, account_id)
    );
    CREATE TABLE txn (
        txn_id           INTEGER PRIMARY KEY,
        park_id          TEXT NOT NULL,
        kind             TEXT NOT NULL,
        terminal_id      TEXT NOT NULL,
        seq              INTEGER NOT NULL,
        operator         TEXT NOT NULL,
        station_id       TEXT NOT NULL,
        card_account     TEXT,
        amount_fen       INTEGER NOT NULL,
        ledger_time_ms   INTEGER NOT NULL,
        terminal_time_ms INTEGER NOT NULL,
        clock_uncertain  INTEGER NOT NULL,
        business_day     TEXT NOT NULL,
        voids_txn        INTEGER UNIQUE REFERENCES txn,  -- a sale can be voided once
        UNIQUE (terminal_id, seq)
    );
    CREATE TABLE posting (
        txn_id     INTEGER NOT NULL REFERENCES txn,
        park_id    TEXT NOT NULL,
        account_id TEXT NOT NULL,
        asset      TEXT NOT NULL CHECK (asset IN ('fen', 'bonus', 'points')),
        amount     INTEGER NOT NULL CHECK (amount <> 0)
    );
    CREATE INDEX posting_by_txn ON posting (txn_id);
    CREATE INDEX posting_by_account ON posting (park_id, account_id);
    CREATE TRIGGER posting_is_immutable_update BEFORE UPDATE ON posting
        BEGIN SELECT RAISE(ABORT, 'postings are immutable'); END;
    CREATE TRIGGER posting_is_immutable_delete BEFORE DELETE ON posting
        BEGIN SELECT RAISE(ABORT, 'postings are immutable'); END;
    CREATE TRIGGER txn_is_immutable_update BEFORE UPDATE ON txn
        BEGIN SELECT RAISE(ABORT, 'transactions are immutable'); END;
    CREATE TRIGGER txn_is_immutable_delete BEFORE DELETE ON txn
        BEGIN SELECT RAISE(ABORT, 'transactions are immutable'); END;
    -- One row per final outcome of an authenticated request: the idempotency record, forever.
    -- payload is the signed request as received (audit evidence); result is the signed Result sent.
    CREATE TABLE request (
        terminal_id  TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        body_sha256  TEXT NOT NULL,
        payload      BLOB NOT NULL,
        outcome      TEXT NOT NULL,
        reason       TEXT NOT NULL,
        txn_id       INTEGER REFERENCES txn,
        result       BLOB NOT NULL,
        received_ms  INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, seq)
    );
    CREATE TABLE refusal (
        refusal_id     INTEGER PRIMARY KEY,
        received_ms    INTEGER NOT NULL,
        topic          TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        reason         TEXT NOT NULL,
        detail         TEXT NOT NULL
    );
    CREATE TABLE alert (
        alert_id INTEGER PRIMARY KEY,
        time_ms  INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        detail   TEXT NOT NULL
    );
    -- Messages that were in flight when the ledger died; after MAX_ATTEMPTS they are set aside.
    CREATE TABLE poison (
        payload_sha256 TEXT PRIMARY KEY,
        attempts       INTEGER NOT NULL,
        topic          TEXT NOT NULL,
        payload        BLOB,             -- filled in when the message arrives again
        set_aside_ms   INTEGER
    );
    """,
    # 2: staff who log in on terminals, and their shifts.
    """
    CREATE TABLE staff (
        park_id     TEXT NOT NULL REFERENCES park,
        staff_id    TEXT NOT NULL,
        name        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('cashier', 'rental', 'front_desk', 'supervisor',
                                                  'technician', 'finance', 'admin')),
        card_no     TEXT NOT NULL,
        pin_hash    TEXT NOT NULL,               -- ledger.pins: scrypt over HMAC(pepper, PIN)
        wrong_pins  INTEGER NOT NULL DEFAULT 0,
        is_active   INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (park_id, staff_id),
        UNIQUE (park_id, card_no)
    );
    CREATE TABLE shift (
        shift_id    INTEGER PRIMARY KEY,
        park_id     TEXT NOT NULL,
        terminal_id TEXT NOT NULL,
        staff_id    TEXT NOT NULL,
        open_seq    INTEGER NOT NULL,
        opened_ms   INTEGER NOT NULL,
        close_seq   INTEGER,
        closed_ms   INTEGER
    );
    CREATE UNIQUE INDEX one_open_shift_per_terminal ON shift (terminal_id) WHERE close_seq IS NULL;
    """,
    # 3: offline selling: superseded online attempts, the blocklist's history, broadcast versions,
    # the park's offline policy, and the terminals' last heartbeats.
    """
    CREATE TABLE superseded (
        terminal_id TEXT NOT NULL,
        seq         INTEGER NOT NULL,      -- the online attempt that got no answer
        by_seq      INTEGER NOT NULL,      -- the offline sale that replaced it
        PRIMARY KEY (terminal_id, seq)
    );
    CREATE TABLE blocklist_change (
        park_id  TEXT NOT NULL,
        version  INTEGER NOT NULL,
        card_no  TEXT NOT NULL,
        issuance INTEGER NOT NULL,
        change   TEXT NOT NULL CHECK (change IN ('block', 'unblock')),
        reason   TEXT NOT NULL,
        time_ms  INTEGER NOT NULL
    );
    CREATE INDEX blocklist_change_by_version ON blocklist_change (park_id, version);
    CREATE TABLE config_version (
        terminal_id TEXT PRIMARY KEY,
        version     INTEGER NOT NULL
    );
    CREATE TABLE offline_policy (
        park_id TEXT PRIMARY KEY REFERENCES park,
        policy  TEXT NOT NULL              -- JSON of protocol.messages.OfflinePolicy
    );
    CREATE TABLE terminal_status (
        terminal_id      TEXT PRIMARY KEY,
        is_online        INTEGER NOT NULL,
        highest_seq      INTEGER NOT NULL,
        queue_depth      INTEGER NOT NULL,
        oldest_queued_ms INTEGER,
        time_ms          INTEGER NOT NULL,
        received_ms      INTEGER NOT NULL
    );
    """,
    # 4: member cards, top-up bonus rules, points, and the notifications outbox.
    """
    CREATE TABLE member (
        park_id          TEXT NOT NULL,
        card_no          TEXT NOT NULL,
        name             TEXT NOT NULL,
        phone            TEXT NOT NULL,
        pin_hash         TEXT NOT NULL,          -- ledger.pins: scrypt over HMAC(pepper, PIN)
        wrong_pins       INTEGER NOT NULL DEFAULT 0,
        no_pin_limit_fen INTEGER NOT NULL,
        PRIMARY KEY (park_id, card_no)
    );
    CREATE TABLE bonus_rule (
        park_id       TEXT NOT NULL,
        min_topup_fen INTEGER NOT NULL CHECK (min_topup_fen > 0),
        bonus_fen     INTEGER NOT NULL CHECK (bonus_fen >= 0),
        PRIMARY KEY (park_id, min_topup_fen)
    );
    CREATE TABLE member_settings (
        park_id          TEXT PRIMARY KEY REFERENCES park,
        bonus_first      INTEGER NOT NULL DEFAULT 0,     -- spend bonus before real money?
        points_per_yuan  INTEGER NOT NULL DEFAULT 1,
        no_pin_limit_fen INTEGER NOT NULL DEFAULT 20000
    );
    -- Written in the same transaction as the booking it tells about; sent later by its own thread.
    CREATE TABLE notification (
        notification_id INTEGER PRIMARY KEY,
        park_id         TEXT NOT NULL,
        card_no         TEXT NOT NULL,
        phone           TEXT NOT NULL,
        txn_id          INTEGER NOT NULL UNIQUE REFERENCES txn,
        body            TEXT NOT NULL,            -- JSON: kind, amount, balances, points
        created_ms      INTEGER NOT NULL,
        sent_ms         INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT
    );
    CREATE INDEX notification_unsent ON notification (sent_ms) WHERE sent_ms IS NULL;
    """,
    # 5: card-type limits (Chinese prepaid-card rules: anonymous 1,000 yuan, named 5,000 yuan).
    """
    CREATE TABLE card_limits (
        park_id         TEXT NOT NULL REFERENCES park,
        kind            TEXT NOT NULL CHECK (kind IN ('temporary', 'member')),
        max_balance_fen INTEGER NOT NULL,
        min_topup_fen   INTEGER NOT NULL,
        max_topup_fen   INTEGER NOT NULL,
        daily_spend_fen INTEGER NOT NULL,
        PRIMARY KEY (park_id, kind)
    );
    """,
    # 6: park rules (whether every request needs a staff member logged in on the terminal).
    """
    CREATE TABLE park_rule (
        park_id       TEXT PRIMARY KEY REFERENCES park,
        require_shift INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 7: whether members may move money to another member's card.
    """
    ALTER TABLE member_settings ADD COLUMN allow_transfer INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: the front desk finds a member's cards by phone number (loss report without the card).
    """
    CREATE INDEX member_by_phone ON member (park_id, phone);
    """,
    # 9: front desks provisioned before member_lookup existed may look members up too (the kind
    # came with the loss report by phone; a desk that may report losses needs it).
    """
    UPDATE terminal SET allowed_kinds = allowed_kinds || ',member_lookup'
     WHERE ',' || allowed_kinds || ',' LIKE '%,loss_report,%'
       AND ',' || allowed_kinds || ',' NOT LIKE '%,member_lookup,%';
    """,
    # 10: faults never lose a request. Set-aside messages get a home an operator can list and retry
    # (``fieldpos ledger set-aside``); refusals are counted per terminal and reason with a bounded
    # sample of payloads (a fuzzing peer once left 20,000 rows); per-minute refusal counts for the
    # flood alert; the ledger's starts, so a restart loop shows in an alert.
    """
    CREATE TABLE set_aside (
        payload_sha256 TEXT PRIMARY KEY,
        topic          TEXT NOT NULL,
        payload        BLOB NOT NULL,
        terminal_id    TEXT,               -- from the topic, when it is a request topic
        seq            INTEGER,            -- from the body, when it can be read without trusting it
        detail         TEXT NOT NULL,
        set_aside_ms   INTEGER NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('held', 'released', 'applied')),
        resolved_ms    INTEGER,
        outcome        TEXT                -- what the retry answered: "approved OK", "refused BAD_SIGNATURE"...
    );
    CREATE INDEX set_aside_held ON set_aside (terminal_id, seq) WHERE state = 'held';
    INSERT INTO set_aside (payload_sha256, topic, payload, detail, set_aside_ms, state)
        SELECT payload_sha256, topic, payload, 'crashed the ledger repeatedly', set_aside_ms, 'held'
          FROM poison WHERE set_aside_ms IS NOT NULL AND payload IS NOT NULL;
    CREATE TABLE refusal_count (
        terminal_id TEXT NOT NULL,         -- '' when the sender is not a registered terminal
        reason      TEXT NOT NULL,
        first_ms    INTEGER NOT NULL,
        last_ms     INTEGER NOT NULL,
        count       INTEGER NOT NULL,
        PRIMARY KEY (terminal_id, reason)
    );
    INSERT INTO refusal_count SELECT '', reason, MIN(received_ms), MAX(received_ms), COUNT(*) FROM refusal GROUP BY reason;
    CREATE TABLE refusal_minute (
        terminal_id TEXT PRIMARY KEY,
        minute      INTEGER NOT NULL,      -- received_ms // 60,000
        count       INTEGER NOT NULL
    );
    ALTER TABLE refusal ADD COLUMN terminal_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE refusal ADD COLUMN seq INTEGER;
    ALTER TABLE refusal ADD COLUMN payload BLOB;
    DELETE FROM refusal WHERE refusal_id <= (SELECT MAX(refusal_id) FROM refusal) - 1000;
    CREATE INDEX refusal_sample ON refusal (terminal_id, reason, refusal_id);
    CREATE INDEX refusal_by_seq ON refusal (terminal_id, seq) WHERE seq IS NOT NULL;
    CREATE TABLE ledger_start (
        time_ms INTEGER NOT NULL
    );
    """,
    # 11: the park's damage fee, a park rule the ledger owns and sends to its tills in their signed
    # config (it was each desk's own setting); 10.00 yuan, the fee the demo desks kept.
    """
    ALTER TABLE park ADD COLUMN damage_fee_fen INTEGER NOT NULL DEFAULT 1000;
    """,
    # 12: how each station sells and when, and the park's staff directory, owned by the ledger and
    # sent in every terminal's signed config (a technician wrote them into each till's station.json).
    # A station sells at any amount, at any hour, until set otherwise. ``config_change`` counts the
    # operators' changes, so the serving ledger notices one made by another process and re-publishes.
    """
    CREATE TABLE station_sales (                   -- no row: the station sells at any amount, at any hour
        park_id    TEXT NOT NULL,
        station_id TEXT NOT NULL,
        mode       TEXT NOT NULL CHECK (mode IN ('fixed', 'count', 'menu', 'free')),
        opens      TEXT,                           -- HH:MM; NULL with closes: always open
        closes     TEXT,
        PRIMARY KEY (park_id, station_id),
        FOREIGN KEY (park_id, station_id) REFERENCES station
    );
    CREATE TABLE menu_item (
        park_id    TEXT NOT NULL,
        station_id TEXT NOT NULL,
        item_id    TEXT NOT NULL,
        name       TEXT NOT NULL,
        price_fen  INTEGER NOT NULL CHECK (price_fen > 0),
        position   INTEGER NOT NULL,               -- the till's key: the items in this order are 1..9
        PRIMARY KEY (park_id, station_id, item_id),
        FOREIGN KEY (park_id, station_id) REFERENCES station
    );
    CREATE TABLE config_change (
        park_id TEXT PRIMARY KEY REFERENCES park,
        version INTEGER NOT NULL
    );
    """,
    # 13: reports read a business day at a time (the console's dashboard every few seconds): one
    # index that holds everything the daily takings, the time of day and the dashboard add up, so
    # those never touch the table itself (bench/reports.py prints the query plans).
    """
    CREATE INDEX txn_by_business_day ON txn (park_id, business_day, kind, station_id, amount_fen, ledger_time_ms);
    """,
    # 14: rentals (issue 13). Item types are the park's, items belong to a rental station. A deposit
    # order is held in its own pool account ``deposit:<order>``: the postings carry the money, the
    # order row only says where it stands (held -> out -> closed, or forfeited) and how it was paid,
    # so ``ledger verify`` can check the pool against the open holds. Claims are what a deposit did
    # not cover; refund requests are what the payment provider still has to pay back.
    """
    CREATE TABLE rental_type (
        park_id               TEXT NOT NULL REFERENCES park,
        item_type             TEXT NOT NULL,
        name                  TEXT NOT NULL,
        deposit_fen           INTEGER NOT NULL CHECK (deposit_fen > 0),
        price_fen             INTEGER NOT NULL CHECK (price_fen >= 0),
        price_per             TEXT NOT NULL CHECK (price_per IN ('hour', 'session')),
        allowed_minutes       INTEGER NOT NULL CHECK (allowed_minutes >= 0),
        grace_minutes         INTEGER NOT NULL CHECK (grace_minutes >= 0),
        late_fee_per_hour_fen INTEGER NOT NULL CHECK (late_fee_per_hour_fen >= 0),
        lost_fee_fen          INTEGER NOT NULL CHECK (lost_fee_fen >= 0),
        damage                TEXT NOT NULL,          -- JSON list of [code, name, fee_fen]
        PRIMARY KEY (park_id, item_type)
    );
    CREATE TABLE rental_item (
        park_id    TEXT NOT NULL,
        label      TEXT NOT NULL,
        station_id TEXT NOT NULL,
        item_type  TEXT NOT NULL,
        state      TEXT NOT NULL CHECK (state IN ('available', 'out', 'in_repair', 'retired')),
        added_ms   INTEGER NOT NULL,
        PRIMARY KEY (park_id, label),
        FOREIGN KEY (park_id, station_id) REFERENCES station,
        FOREIGN KEY (park_id, item_type) REFERENCES rental_type
    );
    CREATE TABLE deposit_order (
        park_id       TEXT NOT NULL,
        order_no      INTEGER NOT NULL,              -- the order id is 'D' || order_no
        item_type     TEXT NOT NULL,
        deposit_fen   INTEGER NOT NULL CHECK (deposit_fen > 0),
        route         TEXT NOT NULL CHECK (route IN ('card', 'cash', 'wechat', 'alipay', 'bank',
                                                     'online_wechat', 'online_alipay')),
        payer_account TEXT NOT NULL,                 -- the card or channel account it came from
        payment_ref   TEXT NOT NULL,                 -- online: the provider's order number
        transaction_id TEXT NOT NULL DEFAULT '',     -- online: the provider's transaction id
        is_member     INTEGER NOT NULL DEFAULT 0,    -- paid from a member card (a debt may land on it)
        state         TEXT NOT NULL CHECK (state IN ('held', 'out', 'closed', 'forfeited')),
        held_txn      INTEGER NOT NULL REFERENCES txn,
        held_ms       INTEGER NOT NULL,
        expires_ms    INTEGER NOT NULL,
        item_label    TEXT,
        station_id    TEXT,                          -- where it was handed out
        out_ms        INTEGER,
        closed_txn    INTEGER REFERENCES txn,
        closed_ms     INTEGER,
        condition     TEXT,
        rental_fen    INTEGER NOT NULL DEFAULT 0,
        late_fen      INTEGER NOT NULL DEFAULT 0,
        damage_fen    INTEGER NOT NULL DEFAULT 0,
        refunded_fen  INTEGER NOT NULL DEFAULT 0,
        claim_fen     INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (park_id, order_no)
    );
    CREATE UNIQUE INDEX deposit_once_per_online_payment ON deposit_order (park_id, route, payment_ref)
        WHERE route LIKE 'online_%';
    CREATE INDEX deposit_by_payer ON deposit_order (park_id, payer_account, state);
    CREATE INDEX deposit_by_state ON deposit_order (park_id, state, held_ms);
    CREATE INDEX deposit_out_by_label ON deposit_order (park_id, item_label) WHERE state = 'out';
    CREATE TABLE voucher_redemption (
        park_id     TEXT NOT NULL,
        order_no    INTEGER NOT NULL,
        terminal_id TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        redeemed_ms INTEGER NOT NULL,                -- the ledger's time online, the terminal's offline
        is_offline  INTEGER NOT NULL,
        item_label  TEXT NOT NULL,
        is_flagged  INTEGER NOT NULL DEFAULT 0,      -- a second redemption (offline, on two terminals)
        PRIMARY KEY (terminal_id, seq)
    );
    CREATE INDEX redemption_by_order ON voucher_redemption (park_id, order_no);
    CREATE TABLE rental_claim (
        park_id      TEXT NOT NULL,
        order_no     INTEGER NOT NULL,
        amount_fen   INTEGER NOT NULL CHECK (amount_fen > 0),
        card_account TEXT,                           -- a debt booked on this member card; NULL: an open claim
        created_ms   INTEGER NOT NULL,
        PRIMARY KEY (park_id, order_no)
    );
    CREATE TABLE refund_request (
        park_id            TEXT NOT NULL,
        refund_no          TEXT NOT NULL,
        order_no           INTEGER NOT NULL,
        provider           TEXT NOT NULL,
        provider_order     TEXT NOT NULL,
        transaction_id     TEXT NOT NULL,
        amount_fen         INTEGER NOT NULL CHECK (amount_fen > 0),
        total_fen          INTEGER NOT NULL,
        state              TEXT NOT NULL CHECK (state IN ('pending', 'done')),
        provider_refund_id TEXT,
        created_ms         INTEGER NOT NULL,
        done_ms            INTEGER,
        PRIMARY KEY (park_id, refund_no)
    );
    """,
    # 15: e-cards (issue 17). The device key the member's phone registered when the e-card was opened,
    # and the last QR time window the ledger accepted for it: a token for that window or an earlier
    # one is a replay (protocol.ecard). The card itself is an ordinary member card (table card).
    """
    CREATE TABLE ecard (
        park_id      TEXT NOT NULL,
        card_no      TEXT NOT NULL,
        issuance     INTEGER NOT NULL,
        device_key   BLOB NOT NULL CHECK (length(device_key) = 32),
        opened_ms    INTEGER NOT NULL,
        expires_ms   INTEGER NOT NULL,
        last_window  INTEGER NOT NULL DEFAULT -1,
        PRIMARY KEY (park_id, card_no, issuance)
    );
    """,
    # 16: the deposits report reads the orders a period took and closed by their transactions'
    # business day (txn_by_business_day finds those); these take each transaction straight to its
    # order. (The rental report reads migration 17's day rows instead.)
    """
    CREATE INDEX deposit_by_closed_txn ON deposit_order (closed_txn, state, item_type, item_label, out_ms, closed_ms,
                                                         rental_fen, late_fen, damage_fen, route, is_member,
                                                         payer_account);
    CREATE INDEX deposit_by_held_txn ON deposit_order (held_txn);
    """,
    # 17: rentals added up per business day as each comes back (Store.apply_rental), so the rental
    # report over a month of a busy park reads a few thousand rows, not every rental (a million took
    # 12 s); filled here from the rentals already returned. Days are those of the return.
    """
    CREATE TABLE rental_day (
        park_id      TEXT NOT NULL,
        business_day TEXT NOT NULL,
        station_id   TEXT NOT NULL,
        item_label   TEXT NOT NULL,
        item_type    TEXT NOT NULL,
        rentals      INTEGER NOT NULL,
        out_ms       INTEGER NOT NULL,
        rental_fen   INTEGER NOT NULL,
        late         INTEGER NOT NULL,       -- rentals with a late fee
        damaged      INTEGER NOT NULL,       -- rentals with damage or lost
        PRIMARY KEY (park_id, business_day, station_id, item_label)
    );
    CREATE TABLE rental_day_slot (           -- when items went out, in 15-minute slots (UTC ms / 900,000)
        park_id      TEXT NOT NULL,
        business_day TEXT NOT NULL,
        station_id   TEXT NOT NULL,
        slot         INTEGER NOT NULL,
        rentals      INTEGER NOT NULL,
        PRIMARY KEY (park_id, business_day, station_id, slot)
    );
    CREATE TABLE rental_day_renter (         -- by who paid: a card, or a channel for desk and online payers
        park_id       TEXT NOT NULL,
        business_day  TEXT NOT NULL,
        station_id    TEXT NOT NULL,
        renter        TEXT NOT NULL CHECK (renter IN ('member', 'temporary', 'online', 'desk')),
        payer_account TEXT NOT NULL,
        rentals       INTEGER NOT NULL,
        out_ms        INTEGER NOT NULL,
        PRIMARY KEY (park_id, business_day, station_id, renter, payer_account)
    );
    INSERT INTO rental_day
        SELECT o.park_id, t.business_day, o.station_id, o.item_label, MIN(o.item_type), COUNT(*),
               SUM(o.closed_ms - o.out_ms), SUM(o.rental_fen), SUM(o.late_fen > 0), SUM(o.damage_fen > 0)
          FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
         WHERE o.state = 'closed' AND o.out_ms IS NOT NULL GROUP BY 1, 2, 3, 4;
    INSERT INTO rental_day_slot
        SELECT o.park_id, t.business_day, o.station_id, o.out_ms / 900000, COUNT(*)
          FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
         WHERE o.state = 'closed' AND o.out_ms IS NOT NULL GROUP BY 1, 2, 3, 4;
    INSERT INTO rental_day_renter
        SELECT o.park_id, t.business_day, o.station_id,
               CASE WHEN o.route = 'card' AND o.is_member <> 0 THEN 'member' WHEN o.route = 'card' THEN 'temporary'
                         WHEN o.route LIKE 'online_%' THEN 'online' ELSE 'desk' END,
               o.payer_account, COUNT(*), SUM(o.closed_ms - o.out_ms)
          FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
         WHERE o.state = 'closed' AND o.out_ms IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
    """,
    # 18: staffed terminals provisioned before card_balance existed may ask a tapped card's balance
    # too (else each tap is refused KIND_NOT_ALLOWED and the till shows "balance unknown" for good).
    # A tap is the one kind of terminal no one logs in on (no shift_open) and it never asks.
    """
    UPDATE terminal SET allowed_kinds = allowed_kinds || ',card_balance'
     WHERE ',' || allowed_kinds || ',' LIKE '%,shift_open,%'
       AND ',' || allowed_kinds || ',' NOT LIKE '%,card_balance,%';
    """,
    # 19: the park's administration (issue 14 item 7), the same for the console and the command line.
    # A campaign multiplies the top-up bonus or the points a member earns on the business days it
    # covers; the ledger's top-up and charge rules apply it (tills only show what the Result says).
    # A balance adjustment is asked for by one person and booked only when a second approves it: the
    # row is the evidence ``ledger verify`` checks each adjustment transaction against.
    """
    CREATE TABLE campaign (
        park_id        TEXT NOT NULL REFERENCES park,
        campaign_id    TEXT NOT NULL,
        name           TEXT NOT NULL,
        kind           TEXT NOT NULL CHECK (kind IN ('bonus', 'points')),
        multiplier_pct INTEGER NOT NULL CHECK (multiplier_pct BETWEEN 100 AND 1000),  -- 200: twice
        first_day      TEXT NOT NULL,              -- business days, YYYY-MM-DD, both included
        last_day       TEXT NOT NULL CHECK (last_day >= first_day),
        is_ended       INTEGER NOT NULL DEFAULT 0, -- ended early by an operator (kept for the record)
        created_ms     INTEGER NOT NULL,
        PRIMARY KEY (park_id, campaign_id)
    );
    CREATE TABLE balance_adjustment (
        adjustment_id INTEGER PRIMARY KEY,
        park_id       TEXT NOT NULL REFERENCES park,
        card_account  TEXT NOT NULL,
        asset         TEXT NOT NULL CHECK (asset IN ('fen', 'bonus', 'points')),
        amount        INTEGER NOT NULL CHECK (amount <> 0),
        reason        TEXT NOT NULL CHECK (length(reason) > 0),
        requested_by  TEXT NOT NULL,
        requested_ms  INTEGER NOT NULL,
        state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'booked', 'rejected')),
        decided_by    TEXT CHECK (decided_by <> requested_by),   -- the second person, never the first
        decided_ms    INTEGER,
        txn_id        INTEGER UNIQUE REFERENCES txn
    );
    CREATE INDEX balance_adjustment_pending ON balance_adjustment (park_id, state);
    """,
    # 20: the rental report's renters without grouping every paying card over the period (a million
    # rentals took 0.4-1.6 s there): per kind of renter and day, and per paying card and day chained
    # to that card's previous and next day with a rental, once per station and once for the whole park
    # (scope ''). A card's first day in a period is the one whose previous day lies before it, and the
    # card rented once in the period if that day had one rental and its next day lies after it, so the
    # cards and repeat renters of any period are counted in one pass over the period's days. Filled
    # from the rentals already returned; migration 17's per-card rows go.
    """
    CREATE TABLE rental_day_by_renter (
        park_id      TEXT NOT NULL,
        business_day TEXT NOT NULL,
        station_id   TEXT NOT NULL,
        renter       TEXT NOT NULL CHECK (renter IN ('member', 'temporary', 'online', 'desk')),
        rentals      INTEGER NOT NULL,
        out_ms       INTEGER NOT NULL,
        PRIMARY KEY (park_id, business_day, station_id, renter)
    );
    CREATE TABLE rental_card_day (
        park_id       TEXT NOT NULL,
        scope         TEXT NOT NULL,         -- the station, or '' for the whole park
        renter        TEXT NOT NULL CHECK (renter IN ('member', 'temporary')),
        payer_account TEXT NOT NULL,         -- the paying card
        business_day  TEXT NOT NULL,
        rentals       INTEGER NOT NULL,
        prev_day      TEXT,                  -- the card's day with a rental before this one (in scope)
        next_day      TEXT,                  -- and after it
        PRIMARY KEY (park_id, scope, renter, payer_account, business_day)
    );
    CREATE INDEX rental_card_day_by_day ON rental_card_day (park_id, scope, renter, business_day, rentals,
                                                            prev_day, next_day);
    INSERT INTO rental_day_by_renter
        SELECT o.park_id, t.business_day, o.station_id,
               CASE WHEN o.route = 'card' AND o.is_member <> 0 THEN 'member' WHEN o.route = 'card' THEN 'temporary'
                    WHEN o.route LIKE 'online_%' THEN 'online' ELSE 'desk' END,
               COUNT(*), SUM(o.closed_ms - o.out_ms)
          FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
         WHERE o.state = 'closed' AND o.out_ms IS NOT NULL GROUP BY 1, 2, 3, 4;
    INSERT INTO rental_card_day
        SELECT park_id, scope, renter, payer_account, business_day, rentals,
               LAG(business_day) OVER card, LEAD(business_day) OVER card
          FROM (SELECT o.park_id, o.station_id AS scope,
                       CASE WHEN o.is_member <> 0 THEN 'member' ELSE 'temporary' END AS renter,
                       o.payer_account, t.business_day, COUNT(*) AS rentals
                  FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
                 WHERE o.state = 'closed' AND o.out_ms IS NOT NULL AND o.route = 'card' GROUP BY 1, 2, 3, 4, 5
                UNION ALL
                SELECT o.park_id, '' AS scope,
                       CASE WHEN o.is_member <> 0 THEN 'member' ELSE 'temporary' END AS renter,
                       o.payer_account, t.business_day, COUNT(*) AS rentals
                  FROM deposit_order o JOIN txn t ON t.txn_id = o.closed_txn
                 WHERE o.state = 'closed' AND o.out_ms IS NOT NULL AND o.route = 'card' GROUP BY 1, 3, 4, 5) AS days
        WINDOW card AS (PARTITION BY park_id, scope, renter, payer_account ORDER BY business_day);
    DROP TABLE rental_day_renter;
    """,
    # 21: shifts and the day-end close (issue 14 item 5). A shift says how it ended: handed over with
    # the blind cash count (the slip's figures: what the books expected in the drawer and what was
    # counted; the difference is posted to cash_over_short by ``close_txn``), closed without one,
    # closed by the next login on its terminal, or closed by a forced day-end close. A closed business
    # day is locked for good: anything booked later goes to the next open day, and ``booked_late``
    # names the day it would have belonged to, so reports can say so. Staffed terminals provisioned
    # before the handover existed may hand over too.
    """
    ALTER TABLE shift ADD COLUMN closed_how TEXT CHECK (closed_how IN ('handover', 'close', 'login', 'day_close'));
    ALTER TABLE shift ADD COLUMN close_txn INTEGER REFERENCES txn;
    ALTER TABLE shift ADD COLUMN business_day TEXT;
    ALTER TABLE shift ADD COLUMN cash_expected_fen INTEGER;
    ALTER TABLE shift ADD COLUMN cash_counted_fen INTEGER;
    CREATE INDEX shift_by_day ON shift (park_id, business_day);
    CREATE TABLE business_day_close (
        park_id      TEXT NOT NULL REFERENCES park,
        business_day TEXT NOT NULL,
        closed_ms    INTEGER NOT NULL,
        closed_by    TEXT NOT NULL,
        forced_shifts INTEGER NOT NULL DEFAULT 0,   -- shifts still open that the close ended uncounted
        PRIMARY KEY (park_id, business_day)
    );
    CREATE TRIGGER business_day_close_is_final_update BEFORE UPDATE ON business_day_close
        BEGIN SELECT RAISE(ABORT, 'a closed business day stays closed'); END;
    CREATE TRIGGER business_day_close_is_final_delete BEFORE DELETE ON business_day_close
        BEGIN SELECT RAISE(ABORT, 'a closed business day stays closed'); END;
    CREATE TABLE booked_late (
        txn_id     INTEGER PRIMARY KEY REFERENCES txn,
        closed_day TEXT NOT NULL                    -- the closed day it arrived in; txn.business_day is where it went
    );
    UPDATE shift SET closed_how = 'close' WHERE close_seq IS NOT NULL;
    UPDATE terminal SET allowed_kinds = allowed_kinds || ',shift_handover'
     WHERE ',' || allowed_kinds || ',' LIKE '%,shift_close,%'
       AND ',' || allowed_kinds || ',' NOT LIKE '%,shift_handover,%';
    """,
    # Contractor settlement and member notices (issue 14 items 6 and 8). A contractor's statement
    # marked paid: its payout is an ordinary transaction (kind contractor_payout, booked by the ledger
    # under '<park>:settlement' with the payout's number as seq) out of contractor:<id>; one contractor's
    # paid periods never overlap (ledger.settlement checks; the keys are the second check), so no
    # receipt is paid twice. A notice an admin sends to members goes through the notification
    # outbox, one row per phone (a member with a replaced card is one person), so the outbox's txn_id
    # may now be empty: a row tells of a booking or carries a notice, never both. A member who wants
    # no notices is kept by phone, so the choice survives a card replacement.
    """
    CREATE TABLE contractor_payout (
        park_id        TEXT NOT NULL REFERENCES park,
        payout_no      INTEGER NOT NULL,
        contractor_id  TEXT NOT NULL,
        first_day      TEXT NOT NULL,
        last_day       TEXT NOT NULL CHECK (last_day >= first_day),
        amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
        receipts       INTEGER NOT NULL,
        channel        TEXT NOT NULL,
        reference      TEXT NOT NULL DEFAULT '',   -- the bank transfer's number, as the operator typed it
        paid_by        TEXT NOT NULL,
        paid_ms        INTEGER NOT NULL,
        txn_id         INTEGER NOT NULL UNIQUE REFERENCES txn,
        PRIMARY KEY (park_id, payout_no),
        UNIQUE (park_id, contractor_id, first_day, last_day)
    );
    CREATE TRIGGER contractor_payout_is_immutable_update BEFORE UPDATE ON contractor_payout
        BEGIN SELECT RAISE(ABORT, 'a paid statement stays paid'); END;
    CREATE TRIGGER contractor_payout_is_immutable_delete BEFORE DELETE ON contractor_payout
        BEGIN SELECT RAISE(ABORT, 'a paid statement stays paid'); END;
    CREATE TABLE member_notice (
        park_id      TEXT NOT NULL REFERENCES park,
        notice_id    INTEGER NOT NULL,
        text         TEXT NOT NULL,
        audience     TEXT NOT NULL,                  -- what it was sent to, as the sender chose it
        sent_by      TEXT NOT NULL,
        created_ms   INTEGER NOT NULL,
        recipients   INTEGER NOT NULL,               -- outbox rows written
        opted_out    INTEGER NOT NULL,               -- phones in the audience that want no notices
        request_key  TEXT UNIQUE,                    -- the console form's, so a double submit sends once
        PRIMARY KEY (park_id, notice_id)
    );
    CREATE TABLE notice_opt_out (
        park_id  TEXT NOT NULL REFERENCES park,
        phone    TEXT NOT NULL,
        since_ms INTEGER NOT NULL,
        PRIMARY KEY (park_id, phone)
    );
    CREATE TABLE notification_v2 (
        notification_id INTEGER PRIMARY KEY,
        park_id         TEXT NOT NULL,
        card_no         TEXT NOT NULL,
        phone           TEXT NOT NULL,
        txn_id          INTEGER UNIQUE REFERENCES txn,
        notice_id       INTEGER,
        body            TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        sent_ms         INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        CHECK ((txn_id IS NULL) <> (notice_id IS NULL)),
        UNIQUE (park_id, notice_id, phone)
    );
    INSERT INTO notification_v2 (notification_id, park_id, card_no, phone, txn_id, body, created_ms, sent_ms, attempts,
                                 last_error)
        SELECT notification_id, park_id, card_no, phone, txn_id, body, created_ms, sent_ms, attempts, last_error
          FROM notification;
    DROP TABLE notification;
    ALTER TABLE notification_v2 RENAME TO notification;
    CREATE INDEX notification_unsent ON notification (sent_ms) WHERE sent_ms IS NULL;
    """,
    # 23: online payments that go wrong (issue 13). A provider refund refused for good (NOT_ENOUGH, a
    # closed or abnormal refund) is marked failed and no longer sent every round: an operator retries
    # it (same refund number) or pays it in cash at the desk, booked as refund_cash (cash_txn).
    # A payment the ledger cannot take as a deposit (the wrong amount, an unknown item type) is
    # recorded and refunded in full to the payer (order_no 0: a refund of no deposit order). Online
    # renters are told of their return and of the refund through the outbox, addressed by their
    # payment ("<provider>:<provider order>": the park's relay reaches the payer; the ledger keeps no
    # personal data of theirs), one message per order and event.
    """
    ALTER TABLE refund_request ADD COLUMN failed_code TEXT;        -- refused for good: waits for an operator
    ALTER TABLE refund_request ADD COLUMN failed_ms INTEGER;
    ALTER TABLE refund_request ADD COLUMN cash_txn INTEGER REFERENCES txn;  -- paid at the desk instead
    CREATE TABLE stray_payment (
        park_id        TEXT NOT NULL,
        provider       TEXT NOT NULL,
        provider_order TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        item_type      TEXT NOT NULL,
        amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
        reason         TEXT NOT NULL,                -- why it is no deposit: DEPOSIT_MISMATCH, UNKNOWN_ITEM_TYPE
        paid_ms        INTEGER NOT NULL,
        received_ms    INTEGER NOT NULL,
        refund_no      TEXT NOT NULL,
        PRIMARY KEY (park_id, provider, provider_order)
    );
    CREATE TABLE renter_notification (
        notification_id INTEGER PRIMARY KEY,
        park_id         TEXT NOT NULL,
        order_no        INTEGER NOT NULL,
        event           TEXT NOT NULL CHECK (event IN ('returned', 'refunded')),
        address         TEXT NOT NULL,
        body            TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        sent_ms         INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        UNIQUE (park_id, order_no, event)
    );
    CREATE INDEX renter_notification_unsent ON renter_notification (sent_ms) WHERE sent_ms IS NULL;
    """,
    # (issue 17) members online: a top-up paid through the payment provider, one row per provider
    # order (a notification delivered twice tops up once), recorded when the portal makes the order
    # so a payment for an order the park never made books nothing; a physical member card bound to
    # an e-card (with its PIN), so the member sees and reports it lost with the e-card.
    """
    CREATE TABLE online_topup (
        park_id        TEXT NOT NULL,
        topup_no       INTEGER NOT NULL,     -- the seq of its transaction (terminal '<park>:online')
        provider       TEXT NOT NULL,
        provider_order TEXT NOT NULL,
        card_no        TEXT NOT NULL,
        issuance       INTEGER NOT NULL,
        amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
        state          TEXT NOT NULL CHECK (state IN ('created', 'booked', 'refused')),
        reason         TEXT,                 -- why a paid order was refused (the top-up rule's reason)
        transaction_id TEXT,
        txn_id         INTEGER REFERENCES txn,
        created_ms     INTEGER NOT NULL,
        booked_ms      INTEGER,
        PRIMARY KEY (park_id, provider, provider_order),
        UNIQUE (park_id, topup_no)
    );
    CREATE TABLE ecard_binding (
        park_id   TEXT NOT NULL,
        card_no   TEXT NOT NULL,             -- the physical member card
        ecard_no  TEXT NOT NULL,
        bound_ms  INTEGER NOT NULL,
        PRIMARY KEY (park_id, card_no)
    );
    """,
    # A sale's daily limit adds up the card's spend today (ledger.store.spent_today) on every charge:
    # an index by card and day that holds all it reads. Without it the query walked every transaction
    # but the voids the park ever booked (the planner took the voids_txn index for "voids_txn IS
    # NULL"), so a charge cost more the longer the park ran.
    """
    CREATE INDEX txn_by_card_day ON txn (park_id, card_account, business_day, kind, voids_txn, amount_fen);
    """,
    # Rental desks provisioned before rental_orders existed may ask which deposits a card or a
    # voucher has open too (else a card tap or a voucher scan at another desk is refused KIND_NOT_ALLOWED).
    """
    UPDATE terminal SET allowed_kinds = allowed_kinds || ',rental_orders'
     WHERE ',' || allowed_kinds || ',' LIKE '%,rental_out,%'
       AND ',' || allowed_kinds || ',' NOT LIKE '%,rental_orders,%';
    """,
    # A terminal's status reports its printer and its software version (PROTOCOL.md §6.2, added within
    # version 1): null for a status that did not say (a tap point has no printer; older builds).
    """
    ALTER TABLE terminal_status ADD COLUMN printer_state TEXT;
    ALTER TABLE terminal_status ADD COLUMN software_version TEXT;
    """,
    # A cash till's opening float (备用金): the change the park's office puts in a station's drawer
    # before each shift, the same sum every time; the handover's expected cash is it plus the
    # shift's net cash (ledger.rules.staff.shift_handover). No row: the drawer starts empty.
    """
    CREATE TABLE station_cash_float (
        park_id        TEXT NOT NULL,
        station_id     TEXT NOT NULL,
        cash_float_fen INTEGER NOT NULL CHECK (cash_float_fen >= 0),
        PRIMARY KEY (park_id, station_id)
    );
    """,
]
