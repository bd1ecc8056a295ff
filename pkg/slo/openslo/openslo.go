package openslo
