package incident

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rootuip/sre/pkg/limits"
)

// Limits of the free text of incident actions and status updates, in
// characters. Every action of the service checks them, whichever way it is
// called (the JSON API, the console's forms, srectl, chat commands), and
// refuses a longer value with a *ValidationError.
const (
	// MaxActor bounds who acted (a user or subsystem name).
	MaxActor = 200
	// MaxAssignee bounds an assignee, as an actor.
	MaxAssignee = MaxActor
	// MaxNote bounds a timeline note and a resolution note.
	MaxNote = 25000
	// MaxImpact bounds an impact statement, as a manual incident's
	// description.
	MaxImpact = MaxManualDescription
	// MaxActions bounds the actions of a status update, as an impact.
	MaxActions = MaxImpact
	// MaxPublicMessage bounds the public message of a status update (the
	// status page's text), as an impact.
	MaxPublicMessage = MaxImpact
	// MaxStatusPageURL bounds the status page link of a status update.
	MaxStatusPageURL = 2048
	// MaxActionItemTitle bounds an action item's title, as a manual
	// incident's title.
	MaxActionItemTitle = MaxManualTitle
	// MaxActionItemOwner bounds an action item's owner, as an assignee.
	MaxActionItemOwner = MaxAssignee
)

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("invalid value")

// ValidationError refuses a value given to an action (a field over its
// limit, an empty required field); the API answers 400 with it and the
// console shows it. Field is the field's JSON name.
type ValidationError struct {
	Field string
	msg   string
}

// Error implements error.
func (e *ValidationError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, msg: fmt.Sprintf(format, args...)}
}

// checkText refuses a value of more than max characters, or with a NUL byte
// or invalid UTF-8 (which PostgreSQL cannot store).
func checkText(field, s string, max int) error {
	if err := limits.Text(field, s); err != nil {
		var fe *limits.FieldError
		if errors.As(err, &fe) {
			return invalid(field, "%q: %v", field, fe.Err)
		}
		return invalid(field, "%q: %v", field, err)
	}
	if utf8.RuneCountInString(s) > max {
		return invalid(field, "%q longer than %d characters", field, max)
	}
	return nil
}

// checkLine is checkText for a name: one line.
func checkLine(field, s string, max int) error {
	if err := checkText(field, s, max); err != nil {
		return err
	}
	if strings.ContainsAny(s, "\r\n") {
		return invalid(field, "%q must be one line", field)
	}
	return nil
}

// checkActor refuses an empty or over-long actor.
func checkActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return invalid("actor", "actor must not be empty")
	}
	return checkLine("actor", actor, MaxActor)
}

// Check validates a status update's free text: impact and actions at most
// MaxImpact and MaxActions characters, the public message
// MaxPublicMessage, the status page link MaxStatusPageURL (one line), and
// the actor as every action's.
func (u StatusUpdate) Check() error {
	if err := checkActor(u.Actor); err != nil {
		return err
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"impact", u.Impact, MaxImpact},
		{"actions", u.Actions, MaxActions},
		{"public_message", u.PublicMessage, MaxPublicMessage},
	} {
		if err := checkText(f.name, f.value, f.max); err != nil {
			return err
		}
	}
	return checkLine("status_page", u.StatusPage, MaxStatusPageURL)
}

// checkActionItem validates an action item's title and owner.
func checkActionItem(title, owner *string) error {
	if title != nil {
		if strings.TrimSpace(*title) == "" {
			return invalid("title", "action item title must not be empty")
		}
		if err := checkText("title", strings.TrimSpace(*title), MaxActionItemTitle); err != nil {
			return err
		}
	}
	if owner != nil {
		return checkLine("owner", *owner, MaxActionItemOwner)
	}
	return nil
}
