-- pandoc filter for the plain preview (tools/build_site.py): a link to a chapter notebook,
-- `01_matmul.ipynb#section`, points at its page, `matmul.html#section`, named as nbdev and Quarto
-- name it (numeric prefix dropped, lower case).
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
