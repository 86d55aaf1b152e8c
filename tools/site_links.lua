-- pandoc filter for the plain preview (tools/build_site.py): what Quarto does on the real site.
--
-- Links: a link to a chapter notebook, `01_matmul.ipynb#section`, points at its page,
-- `matmul.html#section`, named as nbdev and Quarto name it (numeric prefix dropped, lower case).
function Link(link)
  local target = link.target
  if target:match("^%a[%w+.-]*:") then return nil end  -- an absolute URL: leave it alone
  local path, fragment = target:match("^([^#]*%.ipynb)(#?.*)$")
  if not path then return nil end
  local dir, name = path:match("^(.-)([^/]*)$")
  name = name:gsub("^%d+[%w]*_", ""):lower():gsub("%.ipynb$", ".html")
  link.target = dir .. name .. fragment
  return link
end

local function escape(text)
  return (text:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

local function raw(text) return pandoc.RawBlock("html", text) end

-- Folded code (`#| code-fold: true` or `show`, with `#| code-summary`): build_site.py puts the
-- directives in the cell's metadata, which pandoc makes attributes of the cell's div. The cell's
-- code goes into a <details> (closed for `true`, open for `show`); its output stays in view.
local function fold(div)
  local state = div.attributes["fold"]
  if not state then return nil end
  local summary = (div.attributes["fold_summary"] or "s:Code"):gsub("^s:", "")
  local content = pandoc.List()
  local done = false
  for _, block in ipairs(div.content) do
    if not done and block.t == "CodeBlock" then
      local open = state == "open" and " open" or ""
      content:insert(raw('<details class="code-fold" data-fold="' .. state .. '"' .. open .. '><summary>' .. escape(summary) .. '</summary>'))
      content:insert(block)
      content:insert(raw('</details>'))
      done = true
    else
      content:insert(block)
    end
  end
  div.attributes["fold"] = nil
  div.attributes["fold_summary"] = nil
  div.content = content
  return div
end

-- Quarto's callouts in markdown: `::: {.callout-note}` (or tip, warning, important, caution), the
-- title from `title="..."` or from a heading on the first line inside, `collapse="true"` for one that
-- starts closed (`"false"`: open, but collapsible). Rendered as a box; a collapsible one as <details>.
local KINDS = {note = "Note", tip = "Tip", warning = "Warning", important = "Important", caution = "Caution"}

local function callout(div)
  local kind
  for _, class in ipairs(div.classes) do
    local k = class:match("^callout%-(%a+)$")
    if k and KINDS[k] then kind = k end
  end
  if not kind then return nil end
  local body = pandoc.List(div.content)
  local title
  if div.attributes["title"] then
    title = pandoc.utils.blocks_to_inlines(pandoc.read(div.attributes["title"], "markdown").blocks)
  elseif body[1] and body[1].t == "Header" then
    title = body:remove(1).content
  else
    title = pandoc.Inlines(KINDS[kind])
  end
  local collapse = div.attributes["collapse"]
  local classes = "callout callout-" .. kind
  local blocks = pandoc.List()
  if collapse == "true" or collapse == "false" then
    blocks:insert(raw('<details class="' .. classes .. '"' .. (collapse == "false" and " open" or "") .. '>'))
    blocks:insert(raw('<summary class="callout-title">'))
    blocks:insert(pandoc.Plain(title))
    blocks:insert(raw('</summary>'))
    blocks:insert(pandoc.Div(body, pandoc.Attr("", {"callout-body"})))
    blocks:insert(raw('</details>'))
  else
    blocks:insert(pandoc.Div({pandoc.Div({pandoc.Plain(title)}, pandoc.Attr("", {"callout-title"})),
                              pandoc.Div(body, pandoc.Attr("", {"callout-body"}))},
                             pandoc.Attr(div.identifier, {"callout", "callout-" .. kind})))
  end
  return blocks
end

function Div(div)
  if div.attributes["fold"] then return fold(div) end
  return callout(div)
end
