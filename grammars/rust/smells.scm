; Rust code-smell queries for refactor-ai (grammar: tree-sitter-rust 0.24.2).
;
; Contract (read by the engine, see grammars/README.md):
;   - every pattern captures exactly one node as @smell; the finding spans that node's lines;
;   - every pattern sets id (kebab-case, reported as rust/<id>), message (one line; {capture}
;     is replaced by that capture's text, truncated) and help (how to refactor);
;   - optional: severity (error | warning | note, default warning) and skip-in-tests ("true":
;     the engine drops matches in files under tests/, inside a #[cfg(test)] module, or inside a
;     #[test] / #[tokio::test] function);
;   - several patterns may share an id (alternatives); each carries the id, the first also the
;     message, help and severity; a later one may give its own message;
;   - only built-in predicates: #eq? #not-eq? #match? #not-match? #any-of? #not-any-of?;
;   - no pattern may capture a comment as @smell (fixture markers are comments). Anchored
;     patterns list "with one leading/trailing comment" as explicit alternatives, because
;     quantifiers next to anchors (`(line_comment)? .`) do not anchor reliably.
;
; Rules:
;   ref-owned-param          parameter typed `&Vec<T>`, `&String`, `&Box<T>` or `&PathBuf` (not in trait impls)
;   unwrap-in-result-fn      statement-level `s.parse().unwrap()` / `File::open(p).unwrap()` (parse and I/O calls) in a fn that returns Result (skip-in-tests)
;   needless-collect         `.collect::<Vec<_>>()` immediately followed by `.len()`, `.is_empty()` or `.contains(..)`
;   single-match             `match x { P => ..., _ => {} }` (two arms, the second a do-nothing wildcard)
;   len-zero                 `x.len() == 0`, `x.len() != 0`, `x.len() > 0` (and mirrored), receiver not `self`
;   needless-return          `return x;` as the last statement of a fn body (skip-in-tests)
;   push-loop                `for` loop whose whole body is one `v.push(expr)` with a simple expr (skip-in-tests)
;   map-clone                `.map(|x| x.clone())`, `.map(Clone::clone)`
;   bool-comparison          `x == true`, `x != false`, ...
;   redundant-pattern-match  `if let Some(_) = x`, `while let Ok(_) = ...` (also `Err(_)`)
;   filter-next              `.filter(p).next()`
;   search-is-some           `.find(|x| ..).is_some()`, `.position(|x| ..).is_none()`, ... (closure argument)
;   map-flatten              `.map(f).flatten()`
;   unwrap-or-default        `.unwrap_or(Vec::new())`, `.unwrap_or_else(String::new)`, `.or_insert_with(Vec::new)`, ...
;   mem-replace-default      `mem::replace(&mut x, Default::default())` / `mem::replace(&mut x, None)`

; ---------------------------------------------------------------------------------------------
; ref-owned-param (clippy ptr_arg, borrowed_box)
; Trait impls are left out (`not-in`): their signatures are dictated by the trait. `&mut Vec<T>` is fine
; (the callee may push), so only plain `&` and `&'a` references are matched. `&Box<dyn Any>` is
; left out: `&dyn Any` would silently accept the Box itself as the Any at call sites.
([(function_item parameters: (parameters (parameter
    type: [(reference_type . type: [(generic_type type: (type_identifier) @owned) (type_identifier) @owned])
           (reference_type . (lifetime) . type: [(generic_type type: (type_identifier) @owned) (type_identifier) @owned])] @smell)))
  (function_signature_item parameters: (parameters (parameter
    type: [(reference_type . type: [(generic_type type: (type_identifier) @owned) (type_identifier) @owned])
           (reference_type . (lifetime) . type: [(generic_type type: (type_identifier) @owned) (type_identifier) @owned])] @smell)))]
 (#set! not-in "impl_item.trait")
 (#any-of? @owned "Vec" "String" "Box" "PathBuf")
 (#not-match? @smell "Box\\s*<\\s*dyn\\s+((std|core)::any::)?Any\\b")
 (#set! id "ref-owned-param")
 (#set! message "parameter type `{smell}` makes callers hold an owned `{owned}`")
 (#set! help "Borrow the contents instead, which every owner (and more) can lend: `&Vec<T>` -> `&[T]`, `&String` -> `&str`, `&Box<T>` -> `&T`, `&PathBuf` -> `&Path`. Existing call sites keep compiling through deref coercion."))

; ---------------------------------------------------------------------------------------------
; unwrap-in-result-fn (clippy unwrap_used / unwrap_in_result, restricted)
; Narrowed for precision: most unwraps in library code encode an invariant (`take()`, `lock()`,
; `checked_sub(..)`, `try_into()` of a size) and reviewers keep them. Only reported: an unwrap
; that is a whole `let` value or statement directly in the body of a fn returning `Result<..>` /
; `io::Result<..>`, on a parse or I/O call whose error `?` could propagate (parsing a string
; literal, `"127.0.0.1:80".parse().unwrap()`, is an invariant and is left alone).
((function_item
   return_type: [(generic_type type: (type_identifier) @ret)
                 (generic_type type: (scoped_type_identifier name: (type_identifier) @ret))]
   body: (block
     [(let_declaration
        value: (call_expression
          function: (field_expression
            value: (call_expression function: (_) @callee) @recv
            field: (field_identifier) @unwrap)
          arguments: (arguments) @args) @smell)
      (expression_statement
        (call_expression
          function: (field_expression
            value: (call_expression function: (_) @callee) @recv
            field: (field_identifier) @unwrap)
          arguments: (arguments) @args) @smell)]))
 (#match? @callee "(\\.(parse|from_str|from_str_radix|read_to_string|read_to_end|read_exact|write_all|flush|read_dir|metadata|canonicalize|set_nonblocking|sync_all|try_clone)|^((std::)?(fs::)?File::(open|create)|(std::)?fs::[a-z_]+|((std::)?ffi::)?CString::new|((std::)?string::)?String::from_utf8|((std::)?str::)?from_utf8|[A-Za-z0-9_]+::from_str(_radix)?))(::<[^()]*>)?$")
 (#not-match? @recv "^(b|r#*)?\"")
 (#eq? @ret "Result") (#eq? @unwrap "unwrap") (#eq? @args "()")
 (#set! skip-in-tests "true")
 (#set! id "unwrap-in-result-fn")
 (#set! message "`{recv}.unwrap()` panics on a fallible call inside a function that already returns Result")
 (#set! help "Propagate the error instead of panicking: `let n: u16 = s.parse().unwrap();` -> `let n: u16 = s.parse()?;` (map the error with `.map_err(..)?` if the types differ)."))

; ---------------------------------------------------------------------------------------------
; needless-collect (clippy needless_collect)
; `.collect::<Vec<_>>().into_iter()` is left alone: it is often there on purpose (to run side
; effects eagerly, end a borrow, or get a concrete `vec::IntoIter` type).
((call_expression
   function: (field_expression
     value: (call_expression
       function: (generic_function
         function: (field_expression field: (field_identifier) @collect)
         type_arguments: (type_arguments . (generic_type type: (type_identifier) @vec) .))
       arguments: (arguments) @cargs)
     field: (field_identifier) @method)
   arguments: (arguments)) @smell
 (#eq? @collect "collect") (#eq? @vec "Vec") (#eq? @cargs "()")
 (#any-of? @method "len" "is_empty" "contains")
 (#set! id "needless-collect")
 (#set! message "`.collect::<Vec<_>>()` is immediately consumed by `.{method}()`")
 (#set! help "Skip the temporary Vec: `.collect::<Vec<_>>().len()` -> `.count()`, `.is_empty()` -> `.next().is_none()`, `.contains(&x)` -> `.any(|y| y == x)`."))

; ---------------------------------------------------------------------------------------------
; single-match (clippy single_match)
((match_expression
   value: (_) @scrutinee
   body: [(match_block
            . (match_arm pattern: (match_pattern !condition))
            . (match_arm pattern: (match_pattern) @wild value: [(block) (unit_expression)] @empty) .)
          (match_block
            . [(line_comment) (block_comment)]
            . (match_arm pattern: (match_pattern !condition))
            . (match_arm pattern: (match_pattern) @wild value: [(block) (unit_expression)] @empty) .)]) @smell
 (#eq? @wild "_")
 (#match? @empty "^(\\{\\s*\\}|\\(\\s*\\))$")
 (#set! id "single-match")
 (#set! message "`match {scrutinee}` has one real arm and a do-nothing `_` arm")
 (#set! help "Use `if let`: `match x { Some(v) => f(v), _ => {} }` -> `if let Some(v) = x { f(v) }`."))

; ---------------------------------------------------------------------------------------------
; len-zero (clippy len_zero)
; `self.len() == 0` is skipped: it is usually the body of `is_empty` itself.
([(binary_expression
    left: (call_expression
      function: (field_expression value: (_) @recv field: (field_identifier) @len)
      arguments: (arguments) @args)
    operator: ["==" "!=" ">"]
    right: (integer_literal) @zero)
  (binary_expression
    left: (integer_literal) @zero
    operator: ["==" "!=" "<"]
    right: (call_expression
      function: (field_expression value: (_) @recv field: (field_identifier) @len)
      arguments: (arguments) @args))] @smell
 (#eq? @len "len") (#eq? @args "()") (#eq? @zero "0")
 (#not-eq? @recv "self")
 (#set! id "len-zero")
 (#set! message "`{smell}` tests emptiness through len()")
 (#set! help "Say what you mean: `x.len() == 0` -> `x.is_empty()`, `x.len() > 0` / `x.len() != 0` -> `!x.is_empty()`."))

; ---------------------------------------------------------------------------------------------
; needless-return (clippy needless_return)
; A `return` preceded by an attribute (`#[cfg(..)] return a;`) is left alone.
([(function_item body: (block . [(expression_statement (return_expression)) (return_expression)] @smell .))
  (function_item body: (block . [(expression_statement (return_expression)) (return_expression)] @smell . [(line_comment) (block_comment)] .))]
 (#set! skip-in-tests "true")
 (#set! id "needless-return")
 (#set! severity "note")
 (#set! message "needless `return` as the last statement of the function")
 (#set! help "The last expression of a block is its value: `return x;` -> `x` (and a final `return;` in a unit function can simply go)."))
([(function_item body: (block (_) @prev . [(expression_statement (return_expression)) (return_expression)] @smell .))
  (function_item body: (block (_) @prev . [(expression_statement (return_expression)) (return_expression)] @smell . [(line_comment) (block_comment)] .))]
 (#not-match? @prev "^#")
 (#set! skip-in-tests "true")
 (#set! id "needless-return"))

; ---------------------------------------------------------------------------------------------
; push-loop (clippy manual_extend-style; vec_init_then_push / same_item_push are related)
; Only a body that is exactly one push of a simple expression: no `?`, `.await`, `return`,
; `break`, `continue` and no braces (closures, async blocks, struct literals) in the argument.
; The target must be a local `v` that the loop pattern does not bind, or a field `self.v`
; (not `self` itself: that is how an Extend impl is written).
((for_expression
   body: (block . [(expression_statement (call_expression function: (field_expression value: (field_expression value: (self) field: (field_identifier)) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .)))
                    (call_expression function: (field_expression value: (field_expression value: (self) field: (field_identifier)) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .))] .)) @smell
 (#not-eq? @vec "self")
 (#eq? @push "push")
 (#not-match? @arg "(\\?|\\.await|\\breturn\\b|\\bbreak\\b|\\bcontinue\\b|\\{)")
 (#set! skip-in-tests "true")
 (#set! id "push-loop")
 (#set! severity "note")
 (#set! message "loop only pushes into `{vec}`")
 (#set! help "Let the iterator do it: `for x in xs { v.push(f(x)); }` -> `v.extend(xs.into_iter().map(f));` or, for a fresh vector, `let v: Vec<_> = xs.into_iter().map(f).collect();`; `for _ in 0..n { v.push(x); }` -> `v.resize(v.len() + n, x);`."))
((for_expression
   pattern: "_"
   body: (block . [(expression_statement (call_expression function: (field_expression value: (identifier) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .)))
                    (call_expression function: (field_expression value: (identifier) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .))] .)) @smell
 (#not-eq? @vec "self")
 (#eq? @push "push")
 (#not-match? @arg "(\\?|\\.await|\\breturn\\b|\\bbreak\\b|\\bcontinue\\b|\\{)")
 (#set! skip-in-tests "true")
 (#set! id "push-loop"))
((for_expression
   pattern: [(identifier) @item (reference_pattern (identifier) @item) (mut_pattern (identifier) @item)]
   body: (block . [(expression_statement (call_expression function: (field_expression value: (identifier) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .)))
                    (call_expression function: (field_expression value: (identifier) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .))] .)) @smell
 (#not-eq? @item @vec)
 (#eq? @push "push")
 (#not-match? @arg "(\\?|\\.await|\\breturn\\b|\\bbreak\\b|\\bcontinue\\b|\\{)")
 (#set! skip-in-tests "true")
 (#set! id "push-loop"))
((for_expression
   pattern: (tuple_pattern . (_) @item . (_) @item2 .)
   body: (block . [(expression_statement (call_expression function: (field_expression value: (identifier) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .)))
                    (call_expression function: (field_expression value: (identifier) @vec field: (field_identifier) @push) arguments: (arguments . (_) @arg .))] .)) @smell
 (#not-eq? @item @vec) (#not-eq? @item2 @vec)
 (#eq? @push "push")
 (#not-match? @arg "(\\?|\\.await|\\breturn\\b|\\bbreak\\b|\\bcontinue\\b|\\{)")
 (#set! skip-in-tests "true")
 (#set! id "push-loop"))

; ---------------------------------------------------------------------------------------------
; map-clone (clippy map_clone)
; `.map(|x| *x)` is not matched: without types it cannot be told from a Box deref.
((call_expression
   function: (field_expression field: (field_identifier) @map)
   arguments: (arguments
     . (closure_expression
         parameters: (closure_parameters . (identifier) @param .)
         body: (call_expression
           function: (field_expression value: (identifier) @recv field: (field_identifier) @clone)
           arguments: (arguments) @args)) .)) @smell
 (#eq? @map "map") (#eq? @clone "clone") (#eq? @args "()") (#eq? @recv @param)
 (#set! id "map-clone")
 (#set! message "`.map(|{param}| {param}.clone())` spelled out by hand")
 (#set! help "Use the adapter: `.map(|x| x.clone())` -> `.cloned()` (or `.copied()` for Copy types), on iterators and on Option<&T>."))
((call_expression
   function: (field_expression field: (field_identifier) @map)
   arguments: (arguments . (scoped_identifier) @path .)) @smell
 (#eq? @map "map") (#eq? @path "Clone::clone")
 (#set! id "map-clone")
 (#set! message "`.map(Clone::clone)` spelled out by hand"))

; ---------------------------------------------------------------------------------------------
; bool-comparison (clippy bool_comparison)
([(binary_expression left: (boolean_literal) operator: ["==" "!="])
  (binary_expression operator: ["==" "!="] right: (boolean_literal))] @smell
 (#set! id "bool-comparison")
 (#set! message "comparison with a bool literal: `{smell}`")
 (#set! help "Use the value directly: `x == true` -> `x`, `x == false` / `x != true` -> `!x`."))

; ---------------------------------------------------------------------------------------------
; redundant-pattern-match (clippy redundant_pattern_matching)
; A scrutinee that returns a guard (`.lock()`, `.borrow()`, ...) is left alone: `if let Ok(_) =
; m.lock()` keeps the guard alive for the block, `.is_ok()` would drop it at once.
((let_condition
   pattern: (tuple_struct_pattern) @pattern
   value: (_) @scrutinee) @smell
 (#match? @pattern "^(Some|Ok|Err)\\s*\\(\\s*_\\s*\\)$")
 (#not-match? @scrutinee "\\.(lock|try_lock|read|write|try_read|try_write|borrow|borrow_mut|try_borrow|try_borrow_mut)\\(\\)")
 (#set! id "redundant-pattern-match")
 (#set! message "`let {pattern} = ...` only tests the variant")
 (#set! help "Ask the value: `if let Some(_) = x` -> `if x.is_some()`, `while let Ok(_) = f()` -> `while f().is_ok()`, `Err(_)` -> `.is_err()`."))

; ---------------------------------------------------------------------------------------------
; filter-next (clippy filter_next)
((call_expression
   function: (field_expression
     value: (call_expression
       function: (field_expression field: (field_identifier) @filter)
       arguments: (arguments . (_) .))
     field: (field_identifier) @next)
   arguments: (arguments) @args) @smell
 (#eq? @filter "filter") (#eq? @next "next") (#eq? @args "()")
 (#set! id "filter-next")
 (#set! message "`.filter(..).next()` is a hand-written `.find(..)`")
 (#set! help "Use `find`: `iter.filter(|x| p(x)).next()` -> `iter.find(|x| p(x))`."))

; ---------------------------------------------------------------------------------------------
; search-is-some (clippy search_is_some)
((call_expression
   function: (field_expression
     value: (call_expression
       function: (field_expression field: (field_identifier) @search)
       arguments: (arguments . (closure_expression) .))
     field: (field_identifier) @test)
   arguments: (arguments) @args) @smell
 (#any-of? @search "find" "position" "rposition") (#any-of? @test "is_some" "is_none") (#eq? @args "()")
 (#set! id "search-is-some")
 (#set! message "`.{search}(..).{test}()` searches only to test for a match")
 (#set! help "Use `any`: `iter.find(|x| p(x)).is_some()` -> `iter.any(|x| p(x))`, `.is_none()` -> `!iter.any(..)`."))

; ---------------------------------------------------------------------------------------------
; map-flatten (clippy map_flatten)
((call_expression
   function: (field_expression
     value: (call_expression
       function: (field_expression field: (field_identifier) @map)
       arguments: (arguments . (_) .))
     field: (field_identifier) @flatten)
   arguments: (arguments) @args) @smell
 (#eq? @map "map") (#eq? @flatten "flatten") (#eq? @args "()")
 (#set! id "map-flatten")
 (#set! message "`.map(..).flatten()` is a hand-written `.flat_map(..)`")
 (#set! help "On iterators use `.flat_map(f)`; on Option/Result use `.and_then(f)`."))

; ---------------------------------------------------------------------------------------------
; unwrap-or-default (clippy unwrap_or_default, or_fun_call)
((call_expression
   function: (field_expression field: (field_identifier) @method)
   arguments: (arguments
     . (call_expression function: (scoped_identifier) @ctor arguments: (arguments) @cargs) .)) @smell
 (#any-of? @method "unwrap_or" "or_insert")
 (#eq? @cargs "()")
 (#match? @ctor "^((Vec|String|HashMap|HashSet|BTreeMap|BTreeSet|VecDeque|BinaryHeap)::(new|default)|Default::default)$")
 (#set! id "unwrap-or-default")
 (#set! message "`.{method}({ctor}())` spells out the default value")
 (#set! help "Use the default-aware method: `.unwrap_or(Vec::new())` -> `.unwrap_or_default()`, `.or_insert_with(Vec::new)` -> `.or_default()` (it also avoids building the value when it is not needed)."))
((call_expression
   function: (field_expression field: (field_identifier) @method)
   arguments: (arguments . (scoped_identifier) @ctor .)) @smell
 (#any-of? @method "unwrap_or_else" "or_insert_with")
 (#match? @ctor "^((Vec|String|HashMap|HashSet|BTreeMap|BTreeSet|VecDeque|BinaryHeap)::(new|default)|Default::default)$")
 (#set! id "unwrap-or-default")
 (#set! message "`.{method}({ctor})` spells out the default value"))

; ---------------------------------------------------------------------------------------------
; mem-replace-default (clippy mem_replace_with_default, mem_replace_option_with_none)
((call_expression
   function: (scoped_identifier path: (_) @mem name: (identifier) @replace)
   arguments: (arguments
     . (reference_expression) @dest
     . (call_expression function: (scoped_identifier) @ctor arguments: (arguments) @cargs) .)) @smell
 (#match? @mem "^((std|core)::)?mem$") (#eq? @replace "replace") (#eq? @cargs "()")
 (#match? @ctor "^((Vec|String|HashMap|HashSet|BTreeMap|BTreeSet|VecDeque|BinaryHeap)::(new|default)|Default::default)$")
 (#set! id "mem-replace-default")
 (#set! message "`mem::replace({dest}, {ctor}())` is `mem::take`")
 (#set! help "Use `std::mem::take(&mut x)` to swap in the default value, and `x.take()` for an Option instead of `mem::replace(&mut x, None)`."))
((call_expression
   function: (scoped_identifier path: (_) @mem name: (identifier) @replace)
   arguments: (arguments
     . (reference_expression) @dest
     . (identifier) @none .)) @smell
 (#match? @mem "^((std|core)::)?mem$") (#eq? @replace "replace") (#eq? @none "None")
 (#set! id "mem-replace-default")
 (#set! message "`mem::replace({dest}, None)` is `Option::take`"))
