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
