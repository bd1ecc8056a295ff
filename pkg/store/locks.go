package store

// LockKey is a PostgreSQL advisory-lock key. Every key sred takes is named
// here, in one place, so two subsystems never share a key by accident.
type LockKey int64

// The advisory-lock keys of sred. Values are stable: replicas of different
// versions running against one database must agree on them.
const (
	// LockMigrate serialises schema migrations of replicas that start together.
	LockMigrate LockKey = 727001
	// LockRunbookClaim serialises runbook run claims (rate limits and target
	// locks are checked and taken under it).
	LockRunbookClaim LockKey = 727005
	// LockSnoozeSweep and LockQuietSweep elect the replica that sweeps expired
	// snoozes and quiet periods of incidents.
	LockSnoozeSweep LockKey = 727101
	LockQuietSweep  LockKey = 727102
	// LockCorrelation serialises, per transaction, the deliveries that may
	// open an incident correlation could join, so that replicas receiving
	// correlated alert groups at once still open one incident.
	LockCorrelation LockKey = 727103
	// LockOncallOverrides, with the hash of a schedule's name as the second
	// key (pg_advisory_xact_lock(int, int)), serialises the changes of that
	// schedule's stored overrides.
	LockOncallOverrides LockKey = 727104
	// LockGateDecision, with the hash of a service, actor and change kind
	// as the second key, serialises the recording of that caller's deploy
	// gate decisions (budget's recordDecision), so that replicas answering
	// the same caller at once compare with each other's rows.
	LockGateDecision LockKey = 727201
	// LockChangeQuota, with the hash of a service as the second key,
	// serialises the deploy gate's count of that service's changes with
	// the slot of the yellow quota it takes (change's ReserveChange), so
	// that replicas gating changes at once never let more than the quota
	// through.
	LockChangeQuota LockKey = 727202
)
