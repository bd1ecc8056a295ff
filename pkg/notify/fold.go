package notify

// foldRetry reports whether the timeline entry of a delivery attempt is left
// out: a notification retried with backoff (max_attempts, 8 by default, for
// each channel and user of each level) would otherwise bury the useful
// entries of the incident timeline under "failed (attempt n)" lines. The
// first failure is written (responders see at once that a channel fails,
// and why), further retries are not, and the outcome ("sent ... after n
// attempts", "failed after n attempt(s), giving up") carries the count.
// Every attempt stays counted in sre_notifications_total{result="retry"} and in the
// outbox row (attempts, last_error).
func foldRetry(result string, attempts int) bool {
	return result == "retry" && attempts > 1
}
