# bash completion for mom-pub, mom-sub, mom-admin, mom-auth and mom-broker.
# make install puts it in share/bash-completion/completions/ once under each
# program's name (bash-completion loads it by the command's name).
#
# The options come from the program's own --help (one line each), so they
# stay in step with it; mom-admin's and mom-auth's nouns and verbs are
# listed here.  Files are offered after the options that take one.

_mom_options()
{
	"$1" --help 2>/dev/null | sed -nE 's/^ +(-[[:alnum:]], )?(--?[[:alnum:]][-[:alnum:]]*).*/\2/p'
}

_mom()
{
	local cur prev words cword cmd
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	cmd=${COMP_WORDS[0]##*/}
	case $prev in
	-f | --file | -c | --config | --token-file | --cafile | --cert | --key | --tls-cert | \
		--tls-key | --tls-cafile | --auth-key | --password-file)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	-D | --data-dir | -d | --dir)
		if [ "$cmd" != mom-sub ]; then
			COMPREPLY=($(compgen -d -- "$cur"))
			return
		fi
		;;
	--fsync)
		COMPREPLY=($(compgen -W 'always interval never' -- "$cur"))
		return
		;;
	--from)
		COMPREPLY=($(compgen -W 'first last new' -- "$cur"))
		return
		;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_mom_options "${COMP_WORDS[0]}")" -- "$cur"))
		return
	fi
	# The first and second words that are not options: noun and verb.
	local i w nouns=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[[ $w == -* ]] && continue
		case ${COMP_WORDS[i - 1]} in
		-s | --server | -W | --wait | -d | --dir | -u | --user) continue ;;
		esac
		nouns+=("$w")
	done
	case $cmd:${#nouns[@]} in
	mom-admin:0)
		COMPREPLY=($(compgen -W 'queue topic sub cluster ping stats' -- "$cur")) ;;
	mom-admin:1)
		case ${nouns[0]} in
		queue) COMPREPLY=($(compgen -W 'create delete list info purge move' -- "$cur")) ;;
		topic) COMPREPLY=($(compgen -W 'create delete list info' -- "$cur")) ;;
		sub) COMPREPLY=($(compgen -W 'list delete' -- "$cur")) ;;
		cluster) COMPREPLY=($(compgen -W 'status digest add remove transfer' -- "$cur")) ;;
		esac ;;
	mom-auth:0)
		COMPREPLY=($(compgen -W 'keygen user token serve login verify cluster-key' -- "$cur")) ;;
	mom-auth:1)
		case ${nouns[0]} in
		user) COMPREPLY=($(compgen -W 'add delete list' -- "$cur")) ;;
		cluster-key) COMPREPLY=($(compgen -f -- "$cur")) ;;
		esac ;;
	esac
}

complete -F _mom mom-pub mom-sub mom-admin mom-auth mom-broker
