package sloth
