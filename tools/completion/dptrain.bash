# bash completion for dptrain (installed to share/bash-completion/completions/dptrain)
_dptrain()
{
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    cmd=${COMP_WORDS[1]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "train eval predict convert info compare --help --version" -- "$cur"))
        return
    fi
    case "$prev" in
        --hidden) COMPREPLY=($(compgen -W "sigmoid relu tanh linear" -- "$cur")); return;;
        --output) COMPREPLY=($(compgen -W "sigmoid softmax linear" -- "$cur")); return;;
        --cost) COMPREPLY=($(compgen -W "mse bce cce" -- "$cur")); return;;
        --optimizer) COMPREPLY=($(compgen -W "sgd momentum nesterov adagrad rmsprop adam nadam" -- "$cur")); return;;
        --lr-schedule) COMPREPLY=($(compgen -W "constant step cosine" -- "$cur")); return;;
        --init) COMPREPLY=($(compgen -W "nielsen xavier he" -- "$cur")); return;;
        --reduce) COMPREPLY=($(compgen -W "auto mpi shm" -- "$cur")); return;;
        --split) COMPREPLY=($(compgen -W "train test validation" -- "$cur")); return;;
        --resume) COMPREPLY=($(compgen -W "latest" -f -- "$cur")); return;;
        --checkpoint-dir) COMPREPLY=($(compgen -d -- "$cur")); return;;
        --data|--model|--out|--save|--init-from|--trace|--metrics|--config|-o) COMPREPLY=($(compgen -f -- "$cur")); return;;
    esac
    if [ "$cmd" = convert ] && [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "idx csv" -- "$cur"))
        return
    fi
    if [[ "$cur" == --* ]]; then
        local opts
        case "$cmd" in
            train) opts=$(dptrain train --help 2>/dev/null | awk '/^  --/ {print $1}');;
            eval) opts="--model --data --split --help";;
            predict) opts="--model --data --out --split --help";;
            convert) opts="-o --out --description --label-col --index-col --header --no-header --sep --decimal --regression --split --seed --standardize --standardize-from --scale --help";;
            compare) opts="--atol --rtol --help";;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}
complete -o filenames -F _dptrain dptrain
