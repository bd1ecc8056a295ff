package notify

// slackJSON is a Slack message as sred posts it, as tests read it.
type slackJSON struct {
	Text        string `json:"text"`
	UnfurlLinks *bool  `json:"unfurl_links"`
	UnfurlMedia *bool  `json:"unfurl_media"`
	Blocks      []struct {
		Type     string            `json:"type"`
		Text     map[string]string `json:"text"`
		Elements []struct {
			Text map[string]string `json:"text"`
			URL  string            `json:"url"`
		} `json:"elements"`
	} `json:"blocks"`
}

// teamsJSON is a Teams message with its Adaptive Card as sred posts it,
// as tests read it.
type teamsJSON struct {
	Type        string `json:"type"`
	Summary     string `json:"summary"`
	Attachments []struct {
		ContentType string `json:"contentType"`
		Content     struct {
			Type    string `json:"type"`
			Version string `json:"version"`
			Body    []struct {
				Type  string              `json:"type"`
				Text  string              `json:"text"`
				Color string              `json:"color"`
				Facts []map[string]string `json:"facts"`
			} `json:"body"`
			Actions []map[string]string `json:"actions"`
			MSTeams struct {
				Entities []struct {
					Type      string            `json:"type"`
					Text      string            `json:"text"`
					Mentioned map[string]string `json:"mentioned"`
				} `json:"entities"`
			} `json:"msteams"`
		} `json:"content"`
	} `json:"attachments"`
}
