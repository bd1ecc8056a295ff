package auth

// Remembered reports whether user's password is in the cache of verified
// credentials.
func (a *Authenticator) Remembered(user, password string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.gen.good[a.credKey(credentials{user: user, password: password})]
	return ok
}

// ComparisonSlots is how many bcrypt comparisons may run at once.
func (a *Authenticator) ComparisonSlots() int { return cap(a.sem) }

// FailureKeyBytes is the size of the keys of the clients and users whose
// failed attempts are remembered.
func (a *Authenticator) FailureKeyBytes() int {
	a.failures.mu.Lock()
	defer a.failures.mu.Unlock()
	n := 0
	for k := range a.failures.clients {
		n += len(k)
	}
	return n
}
